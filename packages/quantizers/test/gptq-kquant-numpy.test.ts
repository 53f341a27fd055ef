// GPTQ on the K grid against an independent reference: tools/reference/gptq_kquant.py (NumPy, the
// paper's Algorithm 1, with llama.cpp's own quantize_row_*_ref choosing each super-block's scales and
// its dequantize_row_* decoding lowbit's bytes), on layers of a 256-wide random Llama with the inputs
// the runtime captures on the TinyStories calibration text.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { type KQuantWritable, loadModel, perplexity } from '@lowbit/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gptq, gptqKQuantize } from '../src/index.js';
import '../../runtime/src/file-system-node.js';
import { writeTinyGguf } from '../../runtime/test/tiny-models.js';

const python = process.env.LOWBIT_PYTHON ?? '/usr/bin/python3';
const script = fileURLToPath(new URL('../../../tools/reference/gptq_kquant.py', import.meta.url));
const binsDir = fileURLToPath(new URL('../../../tools/llama-cpp/node_modules/@node-llama-cpp/', import.meta.url));
const hasGgml = existsSync(binsDir) && readdirSync(binsDir).some((p) => existsSync(join(binsDir, p, 'bins')) && readdirSync(join(binsDir, p, 'bins')).some((b) => existsSync(join(binsDir, p, 'bins', b, 'libggml-base.so'))));
const noNumpy = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0 ? '' : `${python} cannot import numpy (apt-get install python3-numpy, or set LOWBIT_PYTHON)`;
const skip = noNumpy || (hasGgml ? '' : "llama.cpp's libggml-base.so is not installed under tools/llama-cpp (npm run llama-cpp)");
if (skip) console.warn(`NumPy GPTQ K-quant reference skipped: ${skip}`);

/** A C-order little-endian f32 .npy (format v1), from the format's description. */
function npyBytes(data: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

const cases: { type: KQuantWritable; layer: string; actOrder: boolean }[] = [
  { type: 'Q2_K', layer: 'blk.0.attn_q.weight', actOrder: false },
  { type: 'Q3_K', layer: 'blk.0.attn_q.weight', actOrder: false },
  { type: 'Q4_K', layer: 'blk.0.ffn_down.weight', actOrder: false },
  { type: 'Q4_K', layer: 'blk.0.attn_q.weight', actOrder: true },
  { type: 'Q5_K', layer: 'blk.0.attn_q.weight', actOrder: false },
  { type: 'Q6_K', layer: 'blk.0.ffn_down.weight', actOrder: true },
];

describe.skipIf(!!skip)('GPTQ on the K grid = the NumPy + ggml reference (tools/reference/gptq_kquant.py)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-gptq-k-numpy-'));
  const data = new Map<string, { base: string; w: Float32Array; H: Float64Array; rows: number; cols: number }>();
  beforeAll(async () => {
    const path = join(dir, 'tiny.gguf');
    await writeTinyGguf('llama', path, 91, { D: 256, F: 512, L: 1, CTX: 256 });
    const model = await loadModel(path);
    const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
    const names = new Set(cases.map((c) => c.layer));
    const captured = new Map<string, Float32Array[]>([...names].map((n) => [n, []]));
    // 6 windows of 256 byte-level tokens: 1536 samples, more than the 512 inputs of ffn_down (H full rank)
    perplexity(model, text, { ctx: 256, maxWindows: 6, onLinearInput: (n, x, batch, cols) => captured.get(n)?.push(x.slice(0, batch * cols)) });
    for (const name of names) {
      const lin = model.linear(name);
      const w = Float32Array.from((lin.source as { data: Float32Array }).data);
      const chunks = captured.get(name) as Float32Array[];
      const x = new Float32Array(chunks.reduce((s, c) => s + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        x.set(c, o);
        o += c.length;
      }
      const g = new Gptq(lin.cols);
      g.addBatch(x, x.length / lin.cols);
      const base = join(dir, name);
      writeFileSync(`${base}.W.npy`, npyBytes(w, [lin.rows, lin.cols]));
      writeFileSync(`${base}.X.npy`, npyBytes(x, [x.length / lin.cols, lin.cols]));
      data.set(name, { base, w, H: g.hessian(), rows: lin.rows, cols: lin.cols });
    }
    model.free();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const { type, layer, actOrder } of cases) {
    it(`${type} ${layer}${actOrder ? ' act-order' : ''}: ggml decodes our bytes to the reference's weights`, () => {
      const { base, w, H, rows, cols } = data.get(layer) as NonNullable<ReturnType<typeof data.get>>;
      const ours = gptqKQuantize(w, [rows, cols], H, { type, actOrder, damp: 0.01 });
      const bin = `${base}.${type}${actOrder ? '.act' : ''}.bin`;
      writeFileSync(bin, ours.data);
      const args = [script, `${base}.W.npy`, `${base}.X.npy`, '--type', `${type[0].toLowerCase()}${type.slice(1)}`, '--check', bin];
      if (actOrder) args.push('--act-order');
      const r = spawnSync(python, args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout) as { gptq_err_output: number; rtn_err_output: number; check_differing: number; check_max_abs: number; check_err_output: number };
      console.log(`${type} ${layer}${actOrder ? ' act-order' : ''}:`, res);
      // Both sides round each column onto the same ggml-chosen sub-block grid in the same order; H differs
      // only in the summation order of XᵀX (f64), so a code may move only at an exact tie: at most 0.1%
      // of the weights may differ, and the output error must agree to 1%.
      expect(res.check_differing, 'weights differing from the reference').toBeLessThanOrEqual(Math.floor(rows * cols * 0.001));
      expect(Math.abs(res.check_err_output - res.gptq_err_output) / res.gptq_err_output).toBeLessThan(0.01);
      expect(res.gptq_err_output).toBeLessThan(res.rtn_err_output);
    });
  }
});
