// GradiVeQ (Yu et al., NeurIPS 2018): gradients are cut into d-long slices and each slice is projected
// on k principal directions learned from earlier gradients. The projection is linear, so nodes can add
// their compressed vectors during a ring all-reduce and decompress only the sum. This models that:
// the PCA basis (from @lowbit/solvers), compression, a ring all-reduce run on the compressed data
// (checked against a plain sum), and the alpha-beta time model of a ring all-reduce with and without it.
import { LowbitError } from '@lowbit/core';
import { type DecoderModel, fromF32, lossAndGrad, toF32, trainParams } from '@lowbit/runtime';
import { pca } from '@lowbit/solvers';

/** Basis [k, d] (rows orthonormal) from the d-long slices of `g` (trailing partial slice ignored). */
export function learnBasis(g: Float32Array, d: number, k: number): Float64Array {
  if (!Number.isInteger(d) || d < 2) throw new LowbitError('E_ARG', `gradiveq: slice length d must be an integer >= 2, got ${d}`);
  const m = Math.floor(g.length / d);
  if (m < 2) throw new LowbitError('E_ARG', `gradiveq: ${g.length} values give ${m} slices of ${d}; PCA needs at least 2`);
  return pca(g.subarray(0, m * d), m, d, k).components;
}

/** Coefficients [slices, k] of g's slices (a partial last slice is zero-padded). */
export function compress(basis: Float64Array, k: number, d: number, g: Float32Array): Float64Array {
  const slices = Math.ceil(g.length / d);
  const c = new Float64Array(slices * k);
  for (let s = 0; s < slices; s++) {
    for (let i = 0; i < k; i++) {
      let acc = 0;
      for (let j = 0; j < d && s * d + j < g.length; j++) acc += basis[i * d + j] * g[s * d + j];
      c[s * k + i] = acc;
    }
  }
  return c;
}

export function decompress(basis: Float64Array, k: number, d: number, c: Float64Array, length: number): Float64Array {
  const out = new Float64Array(length);
  const slices = c.length / k;
  for (let s = 0; s < slices; s++) {
    for (let j = 0; j < d && s * d + j < length; j++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += basis[i * d + j] * c[s * k + i];
      out[s * d + j] = acc;
    }
  }
  return out;
}

/**
 * Ring all-reduce (reduce-scatter then all-gather) over N nodes, step by step: node r sends chunk
 * (r - step) mod N to node r+1, which adds it (reduce-scatter) or stores it (all-gather). Returns
 * every node's final vector; 2(N-1) steps, each moving 1/N of the data per node.
 */
export function ringAllReduce(inputs: Float64Array[]): Float64Array[] {
  const N = inputs.length;
  if (N < 1) throw new LowbitError('E_ARG', 'gradiveq: ring all-reduce needs at least one node');
  const L = inputs[0].length;
  if (inputs.some((x) => x.length !== L)) throw new LowbitError('E_SHAPE', 'gradiveq: every node must hold the same number of values');
  const buf = inputs.map((x) => Float64Array.from(x));
  const bounds = (c: number) => [Math.floor((c * L) / N), Math.floor(((c + 1) * L) / N)];
  for (const phase of ['reduce', 'gather'] as const) {
    for (let step = 0; step < N - 1; step++) {
      const sent = buf.map((b, r) => {
        const c = (((r - step + (phase === 'gather' ? 1 : 0)) % N) + N) % N;
        const [a, e] = bounds(c);
        return { c, data: b.slice(a, e) };
      });
      sent.forEach(({ c, data }, r) => {
        const dst = buf[(r + 1) % N];
        const [a] = bounds(c);
        for (let i = 0; i < data.length; i++) dst[a + i] = phase === 'reduce' ? dst[a + i] + data[i] : data[i];
      });
    }
  }
  return buf;
}

/** Alpha-beta model of a ring all-reduce of `bytes` over `nodes`: 2(N-1) steps of latency + bytes/N over the link. */
export function ringTime(bytes: number, nodes: number, bandwidthBytesPerS: number, latencyS: number): number {
  if (!(bandwidthBytesPerS > 0) || !(latencyS >= 0) || !Number.isInteger(nodes) || nodes < 1) throw new LowbitError('E_ARG', 'gradiveq: need nodes >= 1, bandwidth > 0, latency >= 0');
  return 2 * (nodes - 1) * (latencyS + bytes / nodes / bandwidthBytesPerS);
}

export interface GradiveqResult {
  d: number;
  k: number;
  nodes: number;
  values: number;
  /** Values sent uncompressed / values sent compressed. */
  compressionRatio: number;
  /** ||decompress(sum of compressed) - sum|| / ||sum||. */
  relError: number;
  /** The compressed ring all-reduce agreed with the plain sum of the compressed vectors (max |difference|). */
  ringMaxDiff: number;
  uncompressedSeconds: number;
  compressedSeconds: number;
  /** Measured here: compressing one node's values plus decompressing the sum, in seconds. */
  codecSeconds: number;
}

/** One gradient-like tensor per node (same length); basis learned on node 0's tensor. */
export function gradiveqStudy(grads: Float32Array[], o: { d: number; k: number; bandwidthBytesPerS: number; latencyS: number }): GradiveqResult {
  const N = grads.length;
  const L = grads[0]?.length ?? 0;
  if (N < 2 || grads.some((g) => g.length !== L)) throw new LowbitError('E_SHAPE', 'gradiveq: need at least 2 nodes with tensors of equal length');
  const basis = learnBasis(grads[0], o.d, o.k);
  const t0 = performance.now();
  const comp = grads.map((g) => compress(basis, o.k, o.d, g));
  const reduced = ringAllReduce(comp);
  const sumC = comp.reduce((acc, c) => acc.map((v, i) => v + c[i]), new Float64Array(comp[0].length));
  const ringMaxDiff = Math.max(...reduced.map((r) => r.reduce((m, v, i) => Math.max(m, Math.abs(v - sumC[i])), 0)));
  const approx = decompress(basis, o.k, o.d, reduced[0], L);
  const codecSeconds = (performance.now() - t0) / 1000 / N;
  let e = 0;
  let z = 0;
  for (let i = 0; i < L; i++) {
    let s = 0;
    for (const g of grads) s += g[i];
    e += (approx[i] - s) ** 2;
    z += s * s;
  }
  const sentC = comp[0].length;
  return {
    d: o.d, k: o.k, nodes: N, values: L, compressionRatio: L / sentC, relError: Math.sqrt(e / z), ringMaxDiff,
    uncompressedSeconds: ringTime(4 * L, N, o.bandwidthBytesPerS, o.latencyS),
    compressedSeconds: ringTime(4 * sentC, N, o.bandwidthBytesPerS, o.latencyS) + codecSeconds,
    codecSeconds,
  };
}

/**
 * Real gradients for a data-parallel ring: node i computes d loss / d weights (`@lowbit/runtime`'s
 * lossAndGrad) on its own window of `ctx` + 1 tokens of `text` (windows i = 0..nodes-1, back to back), as
 * each worker of a data-parallel step does on its share of the batch. Each node's vector is every
 * gradient tensor whose name contains `match` (all when empty), concatenated in name order. Needs an f32
 * (or f16) Llama-style model: a quantized layer is runtime's E_UNSUPPORTED naming it.
 */
export function trainingGradients(model: DecoderModel, text: string, nodes: number, options: { ctx?: number; match?: string } = {}): { grads: Float32Array[]; names: string[]; losses: number[] } {
  const ctx = options.ctx ?? 64;
  if (!Number.isInteger(nodes) || nodes < 2) throw new LowbitError('E_ARG', `gradiveq: nodes must be an integer >= 2, got ${nodes}`);
  if (!Number.isInteger(ctx) || ctx < 2 || ctx + 1 > model.config.contextLength) throw new LowbitError('E_ARG', `gradiveq: window of ${ctx} tokens must lie in 2..${model.config.contextLength - 1} (the model's context)`);
  // encode a growing prefix, not the whole text (tokenizing 200 kB takes seconds); the margin keeps the
  // tokens used clear of the cut, where the prefix's last tokens may differ from the whole text's
  const need = nodes * ctx + 1;
  let ids: number[] = [];
  for (let chars = need * 8; ; chars *= 2) {
    ids = model.tokenizer.encode(text.slice(0, chars), { bos: true });
    if (chars >= text.length || ids.length >= need + 16) break;
  }
  if (ids.length < need) throw new LowbitError('E_ARG', `gradiveq: the text has ${ids.length} tokens; ${nodes} nodes with windows of ${ctx} need ${need}`);
  const params = trainParams(model);
  const match = options.match ?? '';
  let names: string[] = [];
  const grads: Float32Array[] = [];
  const losses: number[] = [];
  for (let i = 0; i < nodes; i++) {
    const r = lossAndGrad(model, ids.slice(i * ctx, i * ctx + ctx + 1), params);
    if (i === 0) {
      names = [...r.grads.keys()].filter((n) => n.includes(match)).sort();
      if (names.length === 0) throw new LowbitError('E_ARG', `gradiveq: no gradient tensor of ${model.name} has "${match}" in its name`);
    }
    const total = names.reduce((s, n) => s + r.grads.get(n)!.length, 0);
    const g = new Float32Array(total);
    let at = 0;
    for (const n of names) {
      g.set(r.grads.get(n)!, at);
      at += r.grads.get(n)!.length;
    }
    grads.push(g);
    losses.push(r.loss);
  }
  return { grads, names, losses };
}

/**
 * Gradient-like tensors from one checkpoint, without training (kept for quantized models, which the
 * training path does not take):
 * node i gets the Q4_0 rounding residual W - Q4_0(W) of layer i's `suffix` weights (e.g. ffn_up), so
 * the nodes hold different tensors of one shape and one distribution. Named as such in every report.
 */
export function quantizationResiduals(model: DecoderModel, suffix: string, nodes: number): Float32Array[] {
  if (!Number.isInteger(nodes) || nodes < 2) throw new LowbitError('E_ARG', `gradiveq: nodes must be an integer >= 2, got ${nodes}`);
  if (nodes > model.config.nLayers) throw new LowbitError('E_ARG', `gradiveq: ${nodes} nodes but ${model.name} has ${model.config.nLayers} layers to draw residuals from`);
  const out: Float32Array[] = [];
  for (let i = 0; i < nodes; i++) {
    const l = model.linear(`blk.${i}.${suffix}.weight`);
    const w = l.source;
    const [rows, cols] = w.shape;
    const x = w.format === 'f32' ? w.data : toF32(ggmlName(w.format), (w as { data: Uint8Array }).data, rows * cols);
    if (cols % 32 !== 0) throw new LowbitError('E_UNSUPPORTED', `gradiveq: ${l.name} has ${cols} columns; Q4_0 residuals need a multiple of 32`);
    const q = toF32('Q4_0', fromF32('Q4_0', x, cols), rows * cols);
    out.push(Float32Array.from(x, (v, j) => v - q[j]));
  }
  return out;
}

function ggmlName(format: string): 'Q8_0' | 'Q4_0' | 'Q4_1' {
  if (format === 'q8_0' || format === 'q4_0' || format === 'q4_1') return format.toUpperCase() as 'Q8_0' | 'Q4_0' | 'Q4_1';
  throw new LowbitError('E_UNSUPPORTED', `gradiveq: weights in ${format} cannot be read back as values here; use an f32 or ggml model`);
}
