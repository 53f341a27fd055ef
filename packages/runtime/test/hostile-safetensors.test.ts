import { describe, expect, it } from 'vitest';
import { isLowbitError } from '@lowbit/kernels';
import { bytesSource } from '../src/byte-source.js';
import { readSafetensors, readSafetensorsF32 } from '../src/safetensors.js';

// Hand-made safetensors headers (issue #13): every malformed field is a LowbitError naming the file,
// the tensor and the field, never a TypeError, and never a silent read outside the tensor's bytes.
function file(header: unknown, dataBytes = 16): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + json.length + i] = i;
  return out;
}

async function failure(bytes: Uint8Array): Promise<{ code: string; message: string }> {
  try {
    await readSafetensors(bytesSource(bytes, 'evil.safetensors'));
  } catch (e) {
    expect(isLowbitError(e), String(e)).toBe(true);
    return e as { code: string; message: string };
  }
  throw new Error('accepted');
}

const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

describe('readSafetensors on hostile headers', () => {
  it('a header that is null, an array or a number → E_BAD_FILE', async () => {
    for (const h of ['null', '[]', '[1,2]', '3', '"x"', 'true']) {
      const e = await failure(file(h));
      expect(e.code, h).toBe('E_BAD_FILE');
      expect(e.message).toContain('evil.safetensors');
    }
  });

  it('a tensor entry that is null or not an object → E_BAD_FILE naming the tensor', async () => {
    for (const v of [null, 1, 'x', []]) {
      const e = await failure(file({ a: v }));
      expect(e.code).toBe('E_BAD_FILE');
      expect(e.message).toMatch(/evil\.safetensors: tensor a/);
    }
  });

  it('missing, null or malformed data_offsets → E_BAD_FILE naming data_offsets', async () => {
    for (const off of [undefined, null, [], [0], [0, 8, 9], ['0', '8'], [0.5, 8.5], [-8, 0], [8, 0], { 0: 0, 1: 8 }]) {
      const e = await failure(file({ a: { dtype: 'F32', shape: [2], ...(off === undefined ? {} : { data_offsets: off }) } }));
      expect(e.code, JSON.stringify(off)).toBe('E_BAD_FILE');
      expect(e.message).toMatch(/tensor a.*data_offsets/);
    }
  });

  it('a shape that is not an array, or negative, fractional, string or huge dims → E_BAD_FILE naming the shape', async () => {
    for (const shape of [null, 2, '2', { length: 2 }, [-2], [2, -1], ['2'], [1.5], [2 ** 60], [1e6, 1e6]]) {
      const e = await failure(file({ a: { dtype: 'F32', shape, data_offsets: [0, 8] } }));
      expect(e.code, JSON.stringify(shape)).toBe('E_BAD_FILE');
      expect(e.message).toMatch(/tensor a.*shape/);
    }
    // [-2, -1] multiplies to 2 elements, the size of the data: it was accepted before the dims were checked
    expect((await failure(file({ a: { dtype: 'F32', shape: [-2, -1], data_offsets: [0, 8] } }))).code).toBe('E_BAD_FILE');
  });

  it('an unknown or non-string dtype → E_BAD_FILE, a known unsupported one → E_UNSUPPORTED', async () => {
    for (const dtype of [null, 4, 'toString', '__proto__', 'f32']) expect((await failure(file({ a: { ...ok, dtype } }))).code).toBe('E_BAD_FILE');
    expect((await failure(file({ a: { ...ok, dtype: 'F64', shape: [1] } }))).code).toBe('E_UNSUPPORTED');
  });

  it('overlapping byte ranges → E_BAD_FILE naming both tensors', async () => {
    const e = await failure(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }));
    expect(e.code).toBe('E_BAD_FILE');
    expect(e.message).toMatch(/a and b overlap/);
    // the same range twice too
    expect((await failure(file({ a: ok, b: ok }))).code).toBe('E_BAD_FILE');
  });

  it('negative offsets (before the data section, or counted from the end of the buffer) → E_BAD_FILE', async () => {
    for (const off of [[-16, -8], [-4, 4]]) expect((await failure(file({ a: { dtype: 'F32', shape: [2], data_offsets: off } }))).code).toBe('E_BAD_FILE');
  });

  it('__metadata__ null, an array or with non-string values → E_BAD_FILE; its keys never reach a prototype', async () => {
    for (const m of [null, [], 'x', { a: 1 }, { a: null }, { a: { b: 'c' } }]) {
      const e = await failure(file({ __metadata__: m, a: ok }));
      expect(e.code, JSON.stringify(m)).toBe('E_BAD_FILE');
      expect(e.message).toContain('__metadata__');
    }
    const st = await readSafetensors(bytesSource(file('{"__metadata__":{"__proto__":"x","toString":"y"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), 'm.safetensors'));
    expect(st.metadata.toString).toBe('y');
    expect(Object.getOwnPropertyDescriptor(st.metadata, '__proto__')?.value).toBe('x');
    expect(st.metadata.constructor).toBeUndefined(); // not inherited from Object.prototype
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('a valid file still reads, its values from its own bytes', async () => {
    const bytes = file({ __metadata__: { format: 'pt' }, a: ok, z: { dtype: 'U8', shape: [0], data_offsets: [8, 8] }, b: { dtype: 'U8', shape: [2, 4], data_offsets: [8, 16] } });
    const st = await readSafetensors(bytesSource(bytes, 'good.safetensors'));
    expect([...st.tensors.keys()]).toEqual(['a', 'z', 'b']);
    expect(st.metadata.format).toBe('pt');
    // data bytes are 0..15 (file()); b is U8 [8..15]
    expect(Array.from(await readSafetensorsF32(st, 'b'))).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    const a = await readSafetensorsF32(st, 'a');
    const want = new Float32Array(new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer);
    expect(Array.from(a)).toEqual(Array.from(want));
  });
});
