// The LSTM language model: gradients against central finite differences in f64 (every parameter
// entry of a tiny model, with and without weight norm / layer norm, from a non-zero state), against
// torch.nn.LSTM autograd where /usr/bin/python3 has torch, the packed-inference path against the
// reference forward, and the file reader's checks.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LowbitError } from '../src/index.js';
import { type LstmConfig, type LstmState, initLstmParams, lstmLossAndGrad, lstmPerplexity, lstmZeroState } from '../src/lstm.js';
import { PackedLstm } from '../src/lstm-packed.js';
import { loadLstm, trainLstm } from '../src/lstm-train.js';
import { writeSafetensors } from '../src/safetensors.js';

function toF64(p: Map<string, Float32Array>): Map<string, Float64Array> {
  return new Map([...p].map(([n, a]) => [n, Float64Array.from(a)]));
}

function randomState(c: LstmConfig, seed: number): LstmState {
  const s = lstmZeroState(c);
  let x = seed;
  const r = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32 - 0.5;
  };
  for (let l = 0; l < c.layers; l++) for (let j = 0; j < c.hidden; j++) {
    s.h[l][j] = r();
    s.c[l][j] = r() * 2;
  }
  return s;
}

describe('LSTM gradients against finite differences (f64)', () => {
  for (const [weightNorm, layerNorm] of [[false, false], [true, false], [false, true], [true, true]]) {
    it(`every entry, weight norm ${weightNorm}, layer norm ${layerNorm}`, () => {
      const c: LstmConfig = { vocab: 7, hidden: 3, layers: 2, weightNorm, layerNorm };
      const p = toF64(initLstmParams(c, 3));
      // larger weights than the init so the gates leave their linear region
      for (const [n, a] of p) if (!n.endsWith('_gain') && !n.endsWith('ln_norm.weight')) for (let i = 0; i < a.length; i++) a[i] = a[i] * 3 + 0.05 * Math.sin(i + n.length);
      const ids = [1, 4, 2, 6, 0, 4, 3];
      const st = randomState(c, 9);
      const { grads } = lstmLossAndGrad(c, p, ids, st);
      // h = 1e-5 central differences in f64: truncation ~h²·f‴ ≈ 1e-10, rounding ~1e-16/h ≈ 1e-11
      const h = 1e-5;
      let worst = 0;
      for (const [n, a] of p) {
        const g = grads.get(n) as Float64Array;
        for (let i = 0; i < a.length; i++) {
          const v = a[i];
          a[i] = v + h;
          const up = lstmLossAndGrad(c, p, ids, st, { forwardOnly: true }).loss;
          a[i] = v - h;
          const dn = lstmLossAndGrad(c, p, ids, st, { forwardOnly: true }).loss;
          a[i] = v;
          worst = Math.max(worst, Math.abs((up - dn) / (2 * h) - g[i]));
        }
      }
      expect(worst).toBeLessThan(1e-8);
    });
  }
});

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
const noTorch = probe.status !== 0 ? `${PYTHON} cannot import torch (apt-get install -y python3-torch)` : '';

// torch.nn.LSTM (float64) with our weights: bias_ih = our bias, bias_hh = 0; embedding and linear head
const TORCH = `
import json, sys, torch
d = json.load(sys.stdin); V, H, L = d['vocab'], d['hidden'], d['layers']
t = lambda n, *s: torch.tensor(d['p'][n], dtype=torch.float64).reshape(*s)
emb = t('token_embd.weight', V, H).requires_grad_()
lstm = torch.nn.LSTM(H, H, L).double()
with torch.no_grad():
  for l in range(L):
    getattr(lstm, f'weight_ih_l{l}').copy_(t(f'lstm.{l}.w_ih', 4*H, H)); getattr(lstm, f'weight_hh_l{l}').copy_(t(f'lstm.{l}.w_hh', 4*H, H))
    getattr(lstm, f'bias_ih_l{l}').copy_(t(f'lstm.{l}.bias', 4*H)); getattr(lstm, f'bias_hh_l{l}').zero_()
wo = t('output.weight', V, H).requires_grad_(); bo = t('output.bias', V).requires_grad_()
ids = torch.tensor(d['ids']); h0 = torch.tensor(d['h0'], dtype=torch.float64).reshape(L, 1, H); c0 = torch.tensor(d['c0'], dtype=torch.float64).reshape(L, 1, H)
y, _ = lstm(emb[ids[:-1]].unsqueeze(1), (h0, c0))
loss = torch.nn.functional.cross_entropy(y.squeeze(1) @ wo.T + bo, ids[1:]); loss.backward()
g = {'token_embd.weight': emb.grad, 'output.weight': wo.grad, 'output.bias': bo.grad}
for l in range(L):
  g[f'lstm.{l}.w_ih'] = getattr(lstm, f'weight_ih_l{l}').grad; g[f'lstm.{l}.w_hh'] = getattr(lstm, f'weight_hh_l{l}').grad; g[f'lstm.{l}.bias'] = getattr(lstm, f'bias_ih_l{l}').grad
print(json.dumps({'loss': loss.item(), 'g': {k: v.flatten().tolist() for k, v in g.items()}}))
`;

describe('LSTM gradients against torch.nn.LSTM', () => {
  it.skipIf(noTorch !== '')(`loss and every gradient entry, 2 layers ${noTorch ? `— skipped: ${noTorch}` : ''}`, () => {
    const c: LstmConfig = { vocab: 11, hidden: 8, layers: 2, weightNorm: false, layerNorm: false };
    const p = toF64(initLstmParams(c, 5));
    const ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4];
    const st = randomState(c, 2);
    const r = lstmLossAndGrad(c, p, ids, st);
    const input = { vocab: c.vocab, hidden: c.hidden, layers: c.layers, ids, h0: st.h.flatMap((a) => [...a]), c0: st.c.flatMap((a) => [...a]), p: Object.fromEntries([...p].map(([n, a]) => [n, [...a]])) };
    const out = spawnSync(PYTHON, ['-c', TORCH], { input: JSON.stringify(input), encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    expect(out.status, out.stderr).toBe(0);
    const ref = JSON.parse(out.stdout) as { loss: number; g: Record<string, number[]> };
    // both in f64 with the same operations up to summation order: agreement to ~1e-15, 1e-10 leaves margin
    expect(Math.abs(r.loss - ref.loss)).toBeLessThan(1e-10);
    expect(Object.keys(ref.g).sort()).toEqual([...r.grads.keys()].sort());
    let worst = 0;
    for (const [n, g] of r.grads) for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - ref.g[n][i]));
    expect(worst).toBeLessThan(1e-10);
  });
});

describe('LSTM inference, files and bad input', () => {
  it('packed (f32 Linear) inference equals the reference forward', async () => {
    const c: LstmConfig = { vocab: 40, hidden: 32, layers: 2, weightNorm: true, layerNorm: true };
    const p = initLstmParams(c, 7);
    const ids = Array.from({ length: 150 }, (_, i) => (i * 7 + (i >> 3)) % 40);
    const ref = lstmPerplexity(c, p, ids, { ctx: 32 });
    const m = await PackedLstm.create(c, p);
    try {
      const got = m.perplexity(ids, 32);
      expect(got.count).toBe(ref.count);
      // f32 matmuls vs f64: ~1e-6 relative on a mean NLL near ln 40
      expect(Math.abs(got.nll / got.count - ref.nll / ref.count)).toBeLessThan(1e-4);
    } finally {
      m.free();
    }
  });

  it('training lowers the loss; the file round-trips; the reader validates', async () => {
    const c: LstmConfig = { vocab: 16, hidden: 8, layers: 1, weightNorm: false, layerNorm: true };
    const p = initLstmParams(c, 1);
    const ids = Array.from({ length: 400 }, (_, i) => (i % 8) * 2);
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-lstm-'));
    try {
      const path = join(dir, 'm.safetensors');
      const r = await trainLstm(c, p, ids, { lr: 0.1, steps: 60, ctx: 16, batch: 2, checkpoint: { path, every: 25 } });
      // a period-8 sequence: the loss falls from ~ln 16 = 2.77 well below 1
      expect(r.losses[0]).toBeGreaterThan(2);
      expect(r.losses.at(-1)).toBeLessThan(1);
      const back = await loadLstm(path);
      expect(back.config).toEqual(c);
      for (const [n, a] of p) expect(back.params.get(n)).toEqual(a);
      const bad = join(dir, 'bad.safetensors');
      await writeSafetensors(bad, [{ name: 'token_embd.weight', dtype: 'F32', shape: [16, 9], data: new Float32Array(144) }], { 'lowbit.lstm.vocab': '16', 'lowbit.lstm.hidden': '8', 'lowbit.lstm.layers': '1', 'lowbit.lstm.weight_norm': 'false', 'lowbit.lstm.layer_norm': 'true' });
      await expect(loadLstm(bad)).rejects.toThrow(/token_embd.weight has shape \[16,9\], the configuration needs \[16,8\]/);
      await writeSafetensors(bad, [], { 'lowbit.lstm.vocab': '16', 'lowbit.lstm.hidden': '0', 'lowbit.lstm.layers': '1', 'lowbit.lstm.weight_norm': 'false', 'lowbit.lstm.layer_norm': 'true' });
      await expect(loadLstm(bad)).rejects.toThrow(/hidden is 0, outside/);
      await writeSafetensors(bad, []);
      await expect(loadLstm(bad)).rejects.toThrow(/metadata lowbit.lstm.vocab is missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects out-of-range configurations and tokens with LowbitError', () => {
    expect(() => initLstmParams({ vocab: 16, hidden: 1, layers: 1, weightNorm: false, layerNorm: false })).toThrow(LowbitError);
    expect(() => initLstmParams({ vocab: 16, hidden: 8, layers: 9, weightNorm: false, layerNorm: false })).toThrow(/layers is 9/);
    const c: LstmConfig = { vocab: 4, hidden: 2, layers: 1, weightNorm: false, layerNorm: false };
    expect(() => lstmLossAndGrad(c, initLstmParams(c), [0, 4], lstmZeroState(c))).toThrow(/token 4 at position 1/);
    expect(() => lstmLossAndGrad(c, initLstmParams(c), [0], lstmZeroState(c))).toThrow(/at least 2 tokens/);
  });
});

describe('LSTM on the kernels', () => {
  it('the f32 WASM matmul path gives the f64 loss and gradients to f32 accuracy', async () => {
    const { loadKernels } = await import('@lowbit/kernels');
    const { lstmWasmMatmul } = await import('../src/lstm.js');
    const c: LstmConfig = { vocab: 50, hidden: 16, layers: 2, weightNorm: true, layerNorm: true };
    const p = initLstmParams(c, 4);
    const ids = Array.from({ length: 33 }, (_, i) => (i * 13) % 50);
    const st = randomState(c, 5);
    const ref = lstmLossAndGrad(c, p, ids, st);
    const got = lstmLossAndGrad(c, p, ids, st, { matmul: lstmWasmMatmul(await loadKernels()) });
    // f32 products of 16..512 terms: ~1e-6 relative; 1e-4 of each tensor's largest entry leaves margin
    expect(Math.abs(got.loss - ref.loss)).toBeLessThan(1e-5);
    for (const [n, g] of ref.grads) {
      const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const w = got.grads.get(n) as Float64Array;
      for (let i = 0; i < g.length; i++) expect(Math.abs(w[i] - g[i])).toBeLessThan(1e-4 * scale + 1e-9);
    }
  });
});
