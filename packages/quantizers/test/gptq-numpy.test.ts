// GPTQ against an independent implementation: scripts/gptq_reference.py (NumPy, written from the
// paper's Algorithm 1, f64 inverse + Cholesky of H⁻¹) on real layers of the embedded model with the
// inputs the runtime captures on the calibration text. quantizeLayer must give the same Ŵ, bit for bit.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { quantizeLayer } from '../src/index.js';

// CI installs Debian's python3-numpy; LOWBIT_PYTHON picks another interpreter.
const python = process.env.LOWBIT_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' });
const noNumpy = probe.status === 0 ? '' : `${python} cannot import numpy (apt-get install python3-numpy, or set LOWBIT_PYTHON)`;
if (noNumpy) console.warn(`NumPy GPTQ reference skipped: ${noNumpy}`);
const script = fileURLToPath(new URL('../scripts/gptq_reference.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lowbit-gptq-numpy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A C-order little-endian f32 .npy (format v1), from the format's description. */
function npyBytes(data: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

function readNpyF32(path: string): { data: Float32Array; shape: number[] } {
  const b = readFileSync(path);
  const len = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + len).toString('latin1');
  expect(header).toMatch(/'descr': '<f4'/);
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').filter((s) => s.trim()).map(Number);
  const bytes = b.subarray(10 + len);
  const raw = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (!/'fortran_order': True/.test(header)) return { data: raw, shape };
  // column-major (NumPy keeps the layout of a column-permuted array): back to row-major
  const [rows, cols] = shape;
  const data = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = raw[c * rows + r];
  return { data, shape };
}

const layers = ['blk.2.ffn_down.weight', 'blk.1.attn_q.weight'];
const settings = [
  { bits: 4, group: 32, symmetric: true, actOrder: false },
  { bits: 3, group: 0, symmetric: false, actOrder: false },
  { bits: 3, group: 32, symmetric: true, actOrder: true },
  { bits: 2, group: 32, symmetric: false, actOrder: false },
];

describe.skipIf(!!noNumpy)('GPTQ = the NumPy reference (scripts/gptq_reference.py), bit for bit, on real layers', async () => {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
  const captured = new Map<string, Float32Array[]>(layers.map((n) => [n, []]));
  perplexity(model, text, { ctx: 256, maxWindows: 2, onLinearInput: (n, x, batch, cols) => captured.get(n)?.push(x.slice(0, batch * cols)) });
  const data = layers.map((name) => {
    const lin = model.linear(name);
    const w = Float32Array.from((lin.source as { data: Float32Array }).data);
    const chunks = captured.get(name)!;
    const x = new Float32Array(chunks.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      x.set(c, o);
      o += c.length;
    }
    const base = join(dir, name);
    writeFileSync(`${base}.W.npy`, npyBytes(w, [lin.rows, lin.cols]));
    writeFileSync(`${base}.X.npy`, npyBytes(x, [x.length / lin.cols, lin.cols]));
    return { name, base, w, x, rows: lin.rows, cols: lin.cols };
  });
  model.free();

  for (const s of settings) {
    const label = `int${s.bits} ${s.group ? `g${s.group}` : 'per-channel'} ${s.symmetric ? 'sym' : 'asym'}${s.actOrder ? ' act-order' : ''}`;
    for (const { name, base, w, x, rows, cols } of data) it(`${label}, ${name}: identical Ŵ`, () => {
      const ours = quantizeLayer(w, [rows, cols], x, [x.length / cols, cols], { method: 'gptq', damp: 0.01, staticGroups: false, ...s });
      const out = `${base}.${label.replace(/ /g, '_')}.Wq.npy`;
      const args = [script, `${base}.W.npy`, `${base}.X.npy`, '--bits', String(s.bits), '--group', String(s.group), '--block', '32', '--out', out];
      if (s.symmetric) args.push('--sym');
      if (s.actOrder) args.push('--act-order');
      const r = spawnSync(python, args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const ref = readNpyF32(out);
      expect(ref.shape).toEqual([rows, cols]);
      expect(x.length / cols, name).toBeGreaterThan(cols); // H is full rank: more samples than inputs
      // Bit for bit: both round each column onto the same fp16-scaled grid in the same order; H differs
      // only in the summation order of XᵀX, which moved no code on these layers.
      let differing = 0;
      for (let i = 0; i < ref.data.length; i++) if (ref.data[i] !== ours.weights[i]) differing++;
      expect(differing, `${name} ${label}: weights that differ from NumPy's`).toBe(0);
    });
  }
});
