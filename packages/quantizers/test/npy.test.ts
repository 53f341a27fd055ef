import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatNpy, isLowbitError, npyMatrix, parseNpy, readNpy, writeNpy } from '../src/index.js';

/** A .npy file built by hand from the format description (numpy/lib/format.py), independent of formatNpy. */
function handMade(major: number, dict: string, data: Uint8Array): Uint8Array {
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const hlen = total - pre;
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  const h = dict.padEnd(hlen - 1, ' ') + '\n';
  for (let i = 0; i < hlen; i++) out[pre + i] = h.charCodeAt(i);
  out.set(data, total);
  return out;
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return isLowbitError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  return 'no error';
};

describe('npy', () => {
  it('reads v1, v2 and v3 headers, f4 and f8, C order', () => {
    const v = Float32Array.of(1, 2, 3, 4, 5, 6);
    for (const major of [1, 2, 3]) {
      const a = parseNpy(handMade(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(v.buffer)));
      expect(a.dtype).toBe('<f4');
      expect(a.shape).toEqual([2, 3]);
      expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
    }
    const d = Float64Array.of(0.1, -2);
    const b = parseNpy(handMade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(d.buffer)));
    expect(Array.from(b.data)).toEqual([0.1, -2]);
    expect(npyMatrix({ ...b, shape: [1, 2] }, 'x', 'W').data).toEqual(Float32Array.of(0.1, -2));
    const s = parseNpy(handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", new Uint8Array(Float32Array.of(7).buffer)));
    expect(s.shape).toEqual([]);
    expect(s.data[0]).toBe(7);
  });

  it('writes what numpy writes: v1, 64-byte aligned data, a trailing newline, 1-tuples with a comma', () => {
    const bytes = formatNpy(Float32Array.of(1, 2, 3), [3]);
    const hlen = bytes[8] | (bytes[9] << 8);
    expect((10 + hlen) % 64).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + hlen));
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/);
    expect(Array.from(parseNpy(bytes).data)).toEqual([1, 2, 3]);
    const ints = parseNpy(formatNpy(Int32Array.of(-1, 5), [1, 2]));
    expect(ints.dtype).toBe('<i4');
    expect(Array.from(ints.data)).toEqual([-1, 5]);
  });

  it('rejects Fortran order, big-endian and unknown dtypes, truncation and bad magic, naming the file', () => {
    const f = handMade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new Uint8Array(16));
    expect(code(() => parseNpy(f, 'W.npy'))).toMatch(/E_UNSUPPORTED: W.npy: array is in Fortran/);
    const be = handMade(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8));
    expect(code(() => parseNpy(be, 'W.npy'))).toMatch(/E_DTYPE: W.npy: dtype '>f4' is not supported \(big-endian/);
    const c8 = handMade(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(16));
    expect(code(() => parseNpy(c8, 'W.npy'))).toMatch(/E_DTYPE: .*'<c8'.*supported: <f4/);
    const short = handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", new Uint8Array(60));
    expect(code(() => parseNpy(short, 'W.npy'))).toMatch(/E_TRUNCATED: W.npy: shape \(4, 4\) of <f4 needs 64 data bytes, file has 60/);
    expect(code(() => parseNpy(new Uint8Array(20), 'W.npy'))).toMatch(/E_BAD_FILE/);
    expect(code(() => npyMatrix(parseNpy(formatNpy(Int32Array.of(1), [1, 1])), 'X.npy', 'inputs'))).toMatch(/E_DTYPE: X.npy: inputs must be float32/);
    expect(code(() => npyMatrix(parseNpy(formatNpy(Float32Array.of(1), [1])), 'X.npy', 'inputs'))).toMatch(/E_SHAPE: X.npy: inputs must be 2-D/);
  });

  it('writes files atomically and reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-npy-'));
    const p = join(dir, 'a.npy');
    await writeNpy(p, Float32Array.of(1.5, -2.5), [2, 1]);
    expect(readdirSync(dir)).toEqual(['a.npy']);
    const a = await readNpy(p);
    expect(a.shape).toEqual([2, 1]);
    expect(Array.from(a.data)).toEqual([1.5, -2.5]);
    await expect(readNpy(join(dir, 'missing.npy'))).rejects.toThrow(/missing.npy: cannot read/);
    writeFileSync(join(dir, 'b.npy'), readFileSync(p).subarray(0, readFileSync(p).length - 2));
    await expect(readNpy(join(dir, 'b.npy'))).rejects.toThrow(/b.npy: shape \(2, 1\)/);
  });
});
