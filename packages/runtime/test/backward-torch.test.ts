// lossAndGrad (f32, WASM matmuls) against PyTorch autograd (float64, torch_llama_grad.py: the Llama
// forward written from torch ops) on the embedded model and a fixed window of the validation text:
// the loss, every tensor's gradient norm and a few gradient entries per tensor.
// Needs /usr/bin/python3 with torch (Debian: apt-get install -y python3-torch); skipped otherwise.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { lossAndGrad } from '../src/backward.js';
import { loadModel } from '../src/index.js';
import { formatNpy } from '../src/npy.js';
import { trainParams } from '../src/train-forward.js';
import { modelFile } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('./torch_llama_grad.py', import.meta.url));
const probeTorch = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const noTorch = probeTorch.status !== 0 ? `${PYTHON} cannot import torch and numpy (apt-get install -y python3-torch)` : '';

describe('gradients against PyTorch on stories260K', () => {
  it.skipIf(noTorch !== '')(`loss, per-tensor gradient norms and entries ${noTorch ? `— skipped: ${noTorch}` : ''}`, async () => {
    const model = await loadModel(modelFile);
    const c = model.config;
    // a fixed window: the first 128 predictions of the validation text from its start (BOS first)
    const text = readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(0, 4000);
    const tokens = model.tokenizer.encode(text, { bos: true }).slice(0, 129);
    expect(tokens.length).toBe(129);
    const params = trainParams(model);
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-grad-'));
    try {
      const probe: Record<string, number[]> = {};
      for (const [name, t] of params) {
        writeFileSync(join(dir, `${name}.npy`), formatNpy(t, shapeOf(name, t.length, c.dim)));
        // first, middle and last entries, plus the largest-|g| entry picked below
        probe[name] = [0, t.length >> 1, t.length - 1];
      }
      const { loss, grads } = lossAndGrad(model, tokens, params);
      for (const [name, g] of grads) {
        let im = 0;
        for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[im])) im = i;
        probe[name].push(im);
      }
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
      writeFileSync(join(dir, 'tokens.json'), JSON.stringify(tokens));
      writeFileSync(join(dir, 'probe.json'), JSON.stringify(probe));
      const r = spawnSync(PYTHON, [script, dir], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
      expect(r.status, r.stderr).toBe(0);
      const ref = JSON.parse(r.stdout) as { torch: string; loss: number; norms: Record<string, number>; entries: Record<string, number[]> };

      // f32 forward vs float64: the loss agrees to ~1e-6 relative; 1e-5 leaves margin
      expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
      expect(Object.keys(ref.norms).sort()).toEqual([...grads.keys()].sort());
      let worstNorm = 0;
      let worstEntry = 0;
      for (const [name, g] of grads) {
        const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
        const rel = Math.abs(norm - ref.norms[name]) / ref.norms[name];
        worstNorm = Math.max(worstNorm, rel);
        // f32 accumulation through 5 blocks and 128 tokens: ~1e-5 relative measured; 1e-3 bound
        expect(rel, `‖∇${name}‖`).toBeLessThan(1e-3);
        probe[name].forEach((i, j) => {
          // each entry within 1e-3 of the tensor's own norm-scaled size (an absolute floor: small
          // entries are differences of large terms) — |g32 − g64| ≤ 1e-3·‖g‖/√size + 1e-3·|g64|
          const want = ref.entries[name][j];
          const err = Math.abs(g[i] - want);
          worstEntry = Math.max(worstEntry, err / (ref.norms[name] / Math.sqrt(g.length) + Math.abs(want)));
          expect(err, `${name}[${i}]`).toBeLessThan(1e-3 * (ref.norms[name] / Math.sqrt(g.length)) + 1e-3 * Math.abs(want));
        });
      }
      // eslint-disable-next-line no-console
      console.log(`torch ${ref.torch}: loss lowbit ${loss.toFixed(7)} torch ${ref.loss.toFixed(7)}; worst rel. norm diff ${worstNorm.toExponential(2)}, worst scaled entry diff ${worstEntry.toExponential(2)} over ${grads.size} tensors`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      model.free();
    }
  });
});

function shapeOf(name: string, size: number, dim: number): number[] {
  if (name.endsWith('_norm.weight')) return [size];
  // linears [rows, cols]: ffn_down and attn_output read the hidden/head width, the rest dim
  if (/ffn_down|attn_output/.test(name)) return [dim, size / dim];
  return [size / dim, dim];
}
