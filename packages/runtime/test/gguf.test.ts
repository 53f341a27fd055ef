import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, afterAll } from 'vitest';
import { bytesSource } from '../src/byte-source.js';
import { type GgufValue, readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { type GgufTensorToWrite, encodeGgufHeader, writeGguf } from '../src/gguf-writer.js';
import { fromF32 } from '../src/ggml-quants.js';
import { modelFile } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const allTypes = new Map<string, GgufValue>([
  ['u8', { type: 0, value: 250 }],
  ['i8', { type: 1, value: -100 }],
  ['u16', { type: 2, value: 65000 }],
  ['i16', { type: 3, value: -30000 }],
  ['u32', { type: 4, value: 4_000_000_000 }],
  ['i32', { type: 5, value: -2_000_000_000 }],
  ['f32', { type: 6, value: 0.5 }],
  ['bool', { type: 7, value: true }],
  ['str', { type: 8, value: 'héllo ▁' }],
  ['u64', { type: 10, value: 2n ** 63n + 5n }],
  ['i64', { type: 11, value: -(2n ** 62n) }],
  ['f64', { type: 12, value: Math.PI }],
  ['arr.str', { type: 9, itemType: 8, value: ['a', '', 'ü'] }],
  ['arr.i32', { type: 9, itemType: 5, value: [1, -2, 3] }],
  ['arr.empty', { type: 9, itemType: 6, value: [] }],
  ['general.alignment', { type: 4, value: 64 }],
]);

describe('GGUF writer → reader', () => {
  it('refuses a general.alignment that is not a multiple of 8 up to 64 KiB (2^32 - 1 would pad a 4 GB header)', () => {
    for (const value of [0, 12, 2 ** 32 - 1, 2 ** 17, 1e300]) {
      const meta = new Map<string, GgufValue>([['general.alignment', { type: 4, value }]]);
      expect(() => encodeGgufHeader(meta, [])).toThrow(/general\.alignment .* is not a multiple of 8 between 8 and 65536/);
    }
    expect(encodeGgufHeader(new Map([['general.alignment', { type: 4, value: 65536 }]]), []).alignment).toBe(65536);
  });

  it('round-trips metadata of every value type, tensor types and alignment', async () => {
    const f = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.cos(i));
    const tensors: GgufTensorToWrite[] = [
      { name: 'a.f32', shape: [3], type: 'F32', data: fromF32('F32', f.subarray(0, 3), 3) },
      { name: 'b.q8', shape: [64, 3], type: 'Q8_0', data: fromF32('Q8_0', f, 64) },
      { name: 'c.q4', shape: [64, 3], type: 'Q4_0', data: () => fromF32('Q4_0', f, 64) },
      { name: 'd.q41', shape: [64, 3], type: 'Q4_1', data: fromF32('Q4_1', f, 64) },
      { name: 'e.f16', shape: [64, 3], type: 'F16', data: fromF32('F16', f, 64) },
      { name: 'f.bf16', shape: [64, 3], type: 'BF16', data: fromF32('BF16', f, 64) },
    ];
    const path = join(dir, 'all.gguf');
    await writeGguf(path, allTypes, tensors);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const g = await readGguf(path);
    expect(g.version).toBe(3);
    expect(g.alignment).toBe(64);
    for (const [k, v] of allTypes) expect(g.metadata.get(k)).toEqual(k === 'f32' ? { type: 6, value: 0.5 } : v);
    for (const t of tensors) {
      const info = g.tensors.get(t.name);
      expect(info?.type).toBe(t.type);
      expect(info?.shape).toEqual(t.shape);
      expect((info?.offset ?? 1) % 64).toBe(0);
      const want = typeof t.data === 'function' ? await t.data() : t.data;
      expect(await readTensorBytes(g, t.name)).toEqual(want);
    }
    await g.source.close();
  });

  it('re-writing the embedded model reproduces it byte for byte', async () => {
    const g = await readGguf(modelFile);
    const tensors = await Promise.all([...g.tensors.values()].map(async (t) => ({ name: t.name, shape: t.shape, type: t.type, data: await readTensorBytes(g, t.name) })));
    await g.source.close();
    const path = join(dir, 'copy.gguf');
    await writeGguf(path, g.metadata, tensors);
    expect(readFileSync(path).equals(readFileSync(modelFile))).toBe(true);
  });
});

describe('GGUF reader: bad input', () => {
  const good = new Uint8Array(readFileSync(modelFile));

  it('wrong magic', async () => {
    const b = good.slice();
    b[0] = 0x50;
    await expect(readGguf(bytesSource(b, 'bad-magic.gguf'))).rejects.toMatchObject({ code: 'E_BAD_FILE', message: expect.stringMatching(/bad-magic\.gguf: not a GGUF file/) });
  });

  it('truncated inside the header and inside the tensor data', async () => {
    await expect(readGguf(bytesSource(good.subarray(0, 300), 'cut.gguf'))).rejects.toMatchObject({ code: 'E_TRUNCATED', message: expect.stringContaining('cut.gguf') });
    await expect(readGguf(bytesSource(good.subarray(0, 400_000), 'cut.gguf'))).rejects.toMatchObject({
      code: 'E_TRUNCATED',
      message: expect.stringMatching(/cut\.gguf: tensor blk\.\d\.\w+\.weight: data ends at byte/),
    });
  });

  it('unsupported tensor type is named', async () => {
    const { header } = encodeGgufHeader(new Map(), [{ name: 'w', shape: [256], type: 'F32' }]);
    const b = new Uint8Array(header.byteLength + 256 * 4);
    b.set(header);
    // the tensor's type u32 sits 12 bytes before the end of its index entry (type u32, offset u64)
    const at = header.byteLength - (header.byteLength % 32 === 0 ? 0 : 0);
    const view = new DataView(b.buffer);
    let typePos = -1;
    for (let p = 24; p < at - 12; p++) if (b[p] === 0x77 && view.getUint32(p + 1, true) === 1) typePos = p + 1 + 4 + 8;
    view.setUint32(typePos, 16, true); // GGML_TYPE_IQ2_XXS (grid-codebook types are not read yet)
    await expect(readGguf(bytesSource(b, 'k.gguf'))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/k\.gguf: tensor w: tensor type IQ2_XXS is not supported/) });
  });
});

describe('GGUF reader: files over 2 GB', () => {
  it('reads a tensor that sits past 4 GiB in a sparse file, without reading what comes before', async () => {
    const { open } = await import('node:fs/promises');
    // 'big' takes 4.5 GiB (never read); 'tail' lies after it
    const tensors = [
      { name: 'big', shape: [1024, 1024, 1152], type: 'F32' as const },
      { name: 'tail', shape: [8], type: 'F32' as const },
    ];
    const { header, offsets } = encodeGgufHeader(new Map(), tensors);
    const tail = fromF32('F32', Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), 8);
    const path = join(dir, 'sparse.gguf');
    const fh = await open(path, 'w');
    await fh.write(header, 0, header.length, 0);
    await fh.write(tail, 0, tail.length, header.length + offsets[1]);
    await fh.close();
    const g = await readGguf(path);
    expect(g.tensors.get('tail')?.offset).toBeGreaterThan(2 ** 32);
    expect(new Float32Array((await readTensorBytes(g, 'tail')).slice().buffer)).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    await g.source.close();
  });
});

describe('bytesSource (a GGUF already in memory)', () => {
  it('hands out copies, so a loaded model pins none of the buffer; close() lets it go and later reads fail', async () => {
    const bytes = new Uint8Array(readFileSync(modelFile));
    const src = bytesSource(bytes, 'upload.gguf');
    const file = await readGguf(src);
    const emb = await readTensorBytes(file, 'token_embd.weight');
    expect(emb.buffer).not.toBe(bytes.buffer);
    const copy = emb.slice();
    expect(copy.some((v) => v !== 0)).toBe(true);
    bytes.fill(0);
    expect(Array.from(emb)).toEqual(Array.from(copy));
    await src.close();
    await expect(readTensorBytes(file, 'token_embd.weight')).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('upload.gguf: read after close()') });
  });
});
