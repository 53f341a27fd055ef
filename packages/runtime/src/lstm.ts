// An LSTM language model (Hochreiter & Schmidhuber 1997, gate order i, f, g, o as torch.nn.LSTM):
// embedding → `layers` LSTM layers of width `hidden` → untied linear head over the vocabulary. Two
// options from the quantized-LSTM review: weight normalization on the gate matrices (Salimans &
// Kingma 2016: each row W_r = g_r·V_r/‖V_r‖, so a row's scale lives in one f32 gain and the rows the
// quantizer sees are unit-norm directions) and layer normalization of the gate pre-activations
// (Ba et al. 2016, here one LN over the 4H pre-activations z = W_ih·x + W_hh·h, then a = γ⊙ẑ + b).
//
// Forward and backward through time run in plain JS over f64 activations; the parameters may be
// Float32Array (training) or Float64Array (the finite-difference test runs entirely in f64).
// Truncated BPTT: a window starts from the state the previous window ended in, with no gradient
// flowing back past the window's start.
import { LowbitError } from '@lowbit/kernels';

export type LstmVec = Float32Array | Float64Array;

export interface LstmConfig {
  vocab: number;
  /** Width of the embedding and of every LSTM layer. */
  hidden: number;
  layers: number;
  weightNorm: boolean;
  layerNorm: boolean;
}

export const LSTM_LIMITS = { hidden: [2, 4096], layers: [1, 8], vocab: [2, 1 << 20] } as const;

export function checkLstmConfig(c: LstmConfig, where = 'lstm'): void {
  for (const k of ['hidden', 'layers', 'vocab'] as const) {
    const [lo, hi] = LSTM_LIMITS[k];
    if (!Number.isSafeInteger(c[k]) || c[k] < lo || c[k] > hi) throw new LowbitError('E_RANGE', `${where}: ${k} is ${c[k]}, outside ${lo}..${hi}`);
  }
}

/** Every parameter's name and shape ([rows, cols] for matrices, [n] for vectors). */
export function lstmParamShapes(c: LstmConfig): Map<string, number[]> {
  checkLstmConfig(c);
  const H = c.hidden;
  const m = new Map<string, number[]>([['token_embd.weight', [c.vocab, H]]]);
  for (let l = 0; l < c.layers; l++) {
    m.set(`lstm.${l}.w_ih`, [4 * H, H]);
    m.set(`lstm.${l}.w_hh`, [4 * H, H]);
    m.set(`lstm.${l}.bias`, [4 * H]);
    if (c.weightNorm) {
      m.set(`lstm.${l}.w_ih_gain`, [4 * H]);
      m.set(`lstm.${l}.w_hh_gain`, [4 * H]);
    }
    if (c.layerNorm) m.set(`lstm.${l}.ln_norm.weight`, [4 * H]);
  }
  m.set('output.weight', [c.vocab, H]);
  m.set('output.bias', [c.vocab]);
  return m;
}

/** Checks that `p` holds exactly the tensors of `c` at their sizes (a file reader's shape check). */
export function checkLstmParams(c: LstmConfig, p: Map<string, LstmVec>, where = 'lstm'): void {
  const shapes = lstmParamShapes(c);
  for (const [name, shape] of shapes) {
    const a = p.get(name);
    const n = shape.reduce((x, y) => x * y, 1);
    if (!a) throw new LowbitError('E_MISSING', `${where}: tensor ${name} is missing`);
    if (a.length !== n) throw new LowbitError('E_SHAPE', `${where}: tensor ${name} has ${a.length} values, [${shape}] needs ${n}`);
  }
  for (const name of p.keys()) if (!shapes.has(name)) throw new LowbitError('E_SHAPE', `${where}: unexpected tensor ${name} for this configuration`);
}

/** A small deterministic generator (mulberry32) so initializations repeat across runs. */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * torch.nn.LSTM's initialization (U(−1/√H, 1/√H) for gate matrices and the head), embeddings
 * U(−0.1, 0.1), forget-gate bias 1 (Jozefowicz et al. 2015), gains ‖V_r‖ (so W = V at the start), γ = 1.
 */
export function initLstmParams(c: LstmConfig, seed = 1): Map<string, Float32Array> {
  const rnd = uniform(seed);
  const H = c.hidden;
  const k = 1 / Math.sqrt(H);
  const p = new Map<string, Float32Array>();
  for (const [name, shape] of lstmParamShapes(c)) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (name === 'token_embd.weight') for (let i = 0; i < a.length; i++) a[i] = (rnd() * 2 - 1) * 0.1;
    else if (name.endsWith('.w_ih') || name.endsWith('.w_hh') || name === 'output.weight') for (let i = 0; i < a.length; i++) a[i] = (rnd() * 2 - 1) * k;
    else if (name.endsWith('.bias')) a.fill(1, H, 2 * H);
    else if (name.endsWith('ln_norm.weight')) a.fill(1);
    p.set(name, a);
  }
  if (c.weightNorm) {
    for (let l = 0; l < c.layers; l++) {
      for (const w of ['w_ih', 'w_hh']) {
        const v = p.get(`lstm.${l}.${w}`) as Float32Array;
        const g = p.get(`lstm.${l}.${w}_gain`) as Float32Array;
        for (let r = 0; r < 4 * H; r++) g[r] = Math.sqrt(rowSq(v, r, H));
      }
    }
  }
  return p;
}

function rowSq(v: LstmVec, r: number, cols: number): number {
  let s = 0;
  for (let j = r * cols; j < (r + 1) * cols; j++) s += v[j] * v[j];
  return s;
}

/**
 * The gate matrices the recurrence multiplies by: V itself, or g_r·V_r/‖V_r‖ with weight norm. These
 * are what a quantizer rounds (the gain folds into the quantized rows).
 */
export function lstmGateMatrices(c: LstmConfig, p: Map<string, LstmVec>): Map<string, LstmVec> {
  const out = new Map<string, LstmVec>();
  const H = c.hidden;
  for (let l = 0; l < c.layers; l++) {
    for (const w of ['w_ih', 'w_hh']) {
      const v = p.get(`lstm.${l}.${w}`) as LstmVec;
      if (!c.weightNorm) {
        out.set(`lstm.${l}.${w}`, v);
        continue;
      }
      const g = p.get(`lstm.${l}.${w}_gain`) as LstmVec;
      const e = new Float64Array(v.length);
      for (let r = 0; r < 4 * H; r++) {
        const s = g[r] / Math.sqrt(rowSq(v, r, H) + 1e-30);
        for (let j = r * H; j < (r + 1) * H; j++) e[j] = v[j] * s;
      }
      out.set(`lstm.${l}.${w}`, e);
    }
  }
  return out;
}

/** The names of the matrices a quantizer rounds: every gate matrix and the head (the embedding stays f32, as in the Llama path). */
export function lstmQuantizedNames(c: LstmConfig): string[] {
  const n: string[] = [];
  for (let l = 0; l < c.layers; l++) n.push(`lstm.${l}.w_ih`, `lstm.${l}.w_hh`);
  n.push('output.weight');
  return n;
}

/** Recurrent state per layer (h and c, each `hidden` values), carried between windows. */
export interface LstmState {
  h: Float64Array[];
  c: Float64Array[];
}

export function lstmZeroState(c: LstmConfig): LstmState {
  return { h: Array.from({ length: c.layers }, () => new Float64Array(c.hidden)), c: Array.from({ length: c.layers }, () => new Float64Array(c.hidden)) };
}

export interface LstmStepOptions {
  /**
   * Replaces the matrices the forward multiplies by (gate matrices after weight norm, the head):
   * fake quantization for QAT. The backward treats the replacement as the identity (straight-through).
   */
  transform?: (name: string, w: LstmVec) => LstmVec;
  /** Skip the backward (evaluation). */
  forwardOnly?: boolean;
  /**
   * out[b, r] = Σc w[r, c]·x[b, c] (w [rows, cols], x [batch, cols]): the batched products (input
   * projections, head, weight gradients). Default: f64 loops; lstmWasmMatmul runs them on the WASM kernels in f32.
   */
  matmul?: LstmMatmul;
  /** Sees the inputs of each quantizable matrix ([T × hidden] rows), for calibration statistics (GPTQ). */
  onInputs?: (name: string, x: Float64Array, rows: number) => void;
}

export interface LstmLossAndGrad {
  /** Mean cross-entropy (nats/token) over the window's predictions. */
  loss: number;
  /** Σ −log p over the predictions (for perplexity over many windows). */
  nll: number;
  count: number;
  /** Gradients of `loss`, same names and sizes as the params; empty with forwardOnly. */
  grads: Map<string, Float64Array>;
  /** The state after the window's last input token (the next window's start). */
  state: LstmState;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export type LstmMatmul = (w: LstmVec, rows: number, cols: number, x: LstmVec, batch: number) => LstmVec;

export const f64Matmul: LstmMatmul = (w, rows, cols, x, batch) => {
  const out = new Float64Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const ro = r * cols;
      const bo = b * cols;
      for (let c = 0; c < cols; c++) s += w[ro + c] * x[bo + c];
      out[b * rows + r] = s;
    }
  }
  return out;
};

/** The batched products on the kernels' f32 matmul (what training uses; ~1e-6 relative from the f64 loops). */
export function lstmWasmMatmul(k: { matmulF32(w: Float32Array, rows: number, cols: number, x: Float32Array, batch: number): Float32Array }): LstmMatmul {
  // |x| < 1e-30 becomes 0: softmax gradients of confident predictions fall below f32's normal range,
  // and subnormal operands slow the kernel's f32 arithmetic ~10x on x86 (a 300-step run took 30x longer)
  const f32 = (v: LstmVec) => {
    if (v instanceof Float32Array) return v;
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = Math.abs(v[i]) < 1e-30 ? 0 : v[i];
    return out;
  };
  return (w, rows, cols, x, batch) => k.matmulF32(f32(w), rows, cols, f32(x), batch);
}

function transposed(a: LstmVec, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

function checkIds(c: LstmConfig, ids: ArrayLike<number>): void {
  if (ids.length < 2) throw new LowbitError('E_ARG', `lstm: a window needs at least 2 tokens, got ${ids.length}`);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= c.vocab) throw new LowbitError('E_RANGE', `lstm: token ${id} at position ${t} is outside the vocabulary 0..${c.vocab - 1}`);
  }
}

/**
 * Loss of predicting ids[1..T] from ids[0..T−1] starting from `state`, and (unless forwardOnly) its
 * gradient w.r.t. every parameter by backpropagation through the window's T steps.
 */
export function lstmLossAndGrad(c: LstmConfig, p: Map<string, LstmVec>, ids: ArrayLike<number>, state: LstmState, o: LstmStepOptions = {}): LstmLossAndGrad {
  checkIds(c, ids);
  const H = c.hidden;
  const G = 4 * H;
  const V = c.vocab;
  const T = ids.length - 1;
  const L = c.layers;
  const eff = lstmGateMatrices(c, p);
  const tf = o.transform ?? ((_: string, w: LstmVec) => w);
  const mm = o.matmul ?? f64Matmul;
  // a kernel matmul takes f32: convert each matrix once per call, not once per token
  const prep = (a: LstmVec): LstmVec => (o.matmul && !(a instanceof Float32Array) ? Float32Array.from(a) : a);
  const W = new Map<string, LstmVec>();
  for (const [n, w] of eff) W.set(n, prep(tf(n, w)));
  const Wout = prep(tf('output.weight', p.get('output.weight') as LstmVec));
  const bout = p.get('output.bias') as LstmVec;
  const emb = p.get('token_embd.weight') as LstmVec;
  // caches per layer, [T × …] row-major
  const xs: Float64Array[] = [];
  const hPrev: Float64Array[] = [];
  const cPrev: Float64Array[] = [];
  const acts: Float64Array[] = []; // gate activations i, f, g, o
  const cs: Float64Array[] = [];
  const hats: Float64Array[] = []; // LN: normalized pre-activations
  const invStd: Float64Array[] = [];
  let x = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let j = 0; j < H; j++) x[t * H + j] = emb[ids[t] * H + j];
  const z = new Float64Array(G);
  const newState = lstmZeroState(c);
  for (let l = 0; l < L; l++) {
    const wih = W.get(`lstm.${l}.w_ih`) as LstmVec;
    const whh = W.get(`lstm.${l}.w_hh`) as LstmVec;
    const b = p.get(`lstm.${l}.bias`) as LstmVec;
    const gam = c.layerNorm ? (p.get(`lstm.${l}.ln_norm.weight`) as LstmVec) : null;
    const hp = new Float64Array(T * H);
    const cp = new Float64Array(T * H);
    const act = new Float64Array(T * G);
    const cc = new Float64Array(T * H);
    const hat = gam ? new Float64Array(T * G) : new Float64Array(0);
    const istd = new Float64Array(T);
    const out = new Float64Array(T * H);
    let h = Float64Array.from(state.h[l]);
    let cell = Float64Array.from(state.c[l]);
    const zx = mm(wih, G, H, x, T);
    for (let t = 0; t < T; t++) {
      hp.set(h, t * H);
      cp.set(cell, t * H);
      const zh = mm(whh, G, H, h, 1);
      for (let r = 0; r < G; r++) z[r] = zx[t * G + r] + zh[r];
      if (gam) {
        let mu = 0;
        for (let r = 0; r < G; r++) mu += z[r];
        mu /= G;
        let va = 0;
        for (let r = 0; r < G; r++) va += (z[r] - mu) ** 2;
        const is = 1 / Math.sqrt(va / G + 1e-5);
        istd[t] = is;
        for (let r = 0; r < G; r++) {
          const zn = (z[r] - mu) * is;
          hat[t * G + r] = zn;
          z[r] = gam[r] * zn;
        }
      }
      for (let r = 0; r < G; r++) z[r] += b[r];
      const hn = new Float64Array(H);
      const cn = new Float64Array(H);
      const a = t * G;
      for (let j = 0; j < H; j++) {
        const ig = sigmoid(z[j]);
        const fg = sigmoid(z[H + j]);
        const gg = Math.tanh(z[2 * H + j]);
        const og = sigmoid(z[3 * H + j]);
        act[a + j] = ig;
        act[a + H + j] = fg;
        act[a + 2 * H + j] = gg;
        act[a + 3 * H + j] = og;
        cn[j] = fg * cell[j] + ig * gg;
        hn[j] = og * Math.tanh(cn[j]);
      }
      cc.set(cn, t * H);
      out.set(hn, t * H);
      h = hn;
      cell = cn;
    }
    newState.h[l] = h;
    newState.c[l] = cell;
    o.onInputs?.(`lstm.${l}.w_ih`, x, T);
    o.onInputs?.(`lstm.${l}.w_hh`, hp, T);
    xs.push(x);
    hPrev.push(hp);
    cPrev.push(cp);
    acts.push(act);
    cs.push(cc);
    hats.push(hat);
    invStd.push(istd);
    x = out;
  }
  // head and cross-entropy; dlogits = (softmax − onehot)/T
  const top = x;
  o.onInputs?.('output.weight', top, T);
  const dTop = new Float64Array(T * H);
  const grads = new Map<string, Float64Array>();
  if (!o.forwardOnly) for (const [n, a] of p) grads.set(n, new Float64Array(a.length));
  const gWout = grads.get('output.weight') ?? new Float64Array(0);
  const gBout = grads.get('output.bias') ?? new Float64Array(0);
  let nll = 0;
  const logits = mm(Wout, V, H, top, T);
  const dLogits = o.forwardOnly ? new Float64Array(0) : new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    const lo = t * V;
    let max = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) if (logits[lo + v] + bout[v] > max) max = logits[lo + v] + bout[v];
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[lo + v] + bout[v] - max);
    const target = ids[t + 1];
    nll += Math.log(sum) + max - (logits[lo + target] + bout[target]);
    if (o.forwardOnly) continue;
    for (let v = 0; v < V; v++) {
      const d = (Math.exp(logits[lo + v] + bout[v] - max) / sum - (v === target ? 1 : 0)) / T;
      gBout[v] += d;
      dLogits[lo + v] = d;
    }
  }
  if (!o.forwardOnly) {
    gWout.set(mm(transposed(top, T, H), H, T, transposed(dLogits, T, V), V));
    dTop.set(mm(transposed(Wout, V, H), H, V, dLogits, T));
  }
  if (o.forwardOnly) return { loss: nll / T, nll, count: T, grads, state: newState };
  // backward through time, top layer first
  let dOut: LstmVec = dTop;
  const dz = new Float64Array(G);
  const da = new Float64Array(G);
  for (let l = L - 1; l >= 0; l--) {
    const wih = W.get(`lstm.${l}.w_ih`) as LstmVec;
    const whh = W.get(`lstm.${l}.w_hh`) as LstmVec;
    const gam = c.layerNorm ? (p.get(`lstm.${l}.ln_norm.weight`) as LstmVec) : null;
    const whhT = prep(transposed(whh, G, H));
    const DZ = new Float64Array(T * G);
    const gb = grads.get(`lstm.${l}.bias`) as Float64Array;
    const gGam = gam ? (grads.get(`lstm.${l}.ln_norm.weight`) as Float64Array) : null;
    const xin = xs[l];
    const hp = hPrev[l];
    const cp = cPrev[l];
    const act = acts[l];
    const cc = cs[l];
    let dh: LstmVec = new Float64Array(H); // from step t+1 through W_hh
    const dc = new Float64Array(H);
    for (let t = T - 1; t >= 0; t--) {
      const a = t * G;
      for (let j = 0; j < H; j++) {
        const ig = act[a + j];
        const fg = act[a + H + j];
        const gg = act[a + 2 * H + j];
        const og = act[a + 3 * H + j];
        const tc = Math.tanh(cc[t * H + j]);
        const dhj = dOut[t * H + j] + dh[j];
        const dcj = dc[j] + dhj * og * (1 - tc * tc);
        da[j] = dcj * gg * ig * (1 - ig);
        da[H + j] = dcj * cp[t * H + j] * fg * (1 - fg);
        da[2 * H + j] = dcj * ig * (1 - gg * gg);
        da[3 * H + j] = dhj * tc * og * (1 - og);
        dc[j] = dcj * fg;
      }
      for (let r = 0; r < G; r++) gb[r] += da[r];
      if (gam && gGam) {
        const hat = hats[l];
        let m1 = 0;
        let m2 = 0;
        for (let r = 0; r < G; r++) {
          gGam[r] += da[r] * hat[a + r];
          const dh2 = da[r] * gam[r];
          dz[r] = dh2;
          m1 += dh2;
          m2 += dh2 * hat[a + r];
        }
        m1 /= G;
        m2 /= G;
        const is = invStd[l][t];
        for (let r = 0; r < G; r++) dz[r] = is * (dz[r] - m1 - hat[a + r] * m2);
      } else dz.set(da);
      DZ.set(dz, a);
      dh = mm(whhT, H, G, dz, 1);
    }
    const DZt = transposed(DZ, T, G);
    const gWih = mm(transposed(xin, T, H), H, T, DZt, G);
    const gWhh = mm(transposed(hp, T, H), H, T, DZt, G);
    const dx = mm(transposed(wih, G, H), H, G, DZ, T);
    // gradients w.r.t. the effective matrices → the stored ones (weight norm), STE through `transform`
    for (const [w, gW] of [['w_ih', gWih], ['w_hh', gWhh]] as const) {
      const gV = grads.get(`lstm.${l}.${w}`) as Float64Array;
      if (!c.weightNorm) {
        gV.set(gW);
        continue;
      }
      const v = p.get(`lstm.${l}.${w}`) as LstmVec;
      const g = p.get(`lstm.${l}.${w}_gain`) as LstmVec;
      const gG = grads.get(`lstm.${l}.${w}_gain`) as Float64Array;
      for (let r = 0; r < G; r++) {
        const n2 = rowSq(v, r, H) + 1e-30;
        const n = Math.sqrt(n2);
        let dot = 0;
        for (let j = r * H; j < (r + 1) * H; j++) dot += gW[j] * v[j];
        gG[r] = dot / n;
        const s = g[r] / n;
        const s2 = (g[r] * dot) / (n2 * n);
        for (let j = r * H; j < (r + 1) * H; j++) gV[j] = s * gW[j] - s2 * v[j];
      }
    }
    dOut = dx;
  }
  const gEmb = grads.get('token_embd.weight') as Float64Array;
  for (let t = 0; t < T; t++) for (let j = 0; j < H; j++) gEmb[ids[t] * H + j] += dOut[t * H + j];
  return { loss: nll / T, nll, count: T, grads, state: newState };
}

/**
 * Perplexity of `ids` as one stream (state carried across windows of `ctx`, as the model reads text),
 * over all predictions ids[1..]. Windows overlap by one token so every token but the first is predicted once.
 */
export function lstmPerplexity(c: LstmConfig, p: Map<string, LstmVec>, ids: ArrayLike<number>, o: { ctx?: number; transform?: LstmStepOptions['transform']; onInputs?: LstmStepOptions['onInputs']; matmul?: LstmMatmul } = {}): { perplexity: number; nll: number; count: number } {
  const ctx = o.ctx ?? 256;
  if (!Number.isSafeInteger(ctx) || ctx < 1) throw new LowbitError('E_RANGE', `lstm perplexity: ctx ${ctx} is not a positive integer`);
  checkIds(c, ids);
  let st = lstmZeroState(c);
  let nll = 0;
  let count = 0;
  for (let at = 0; at + 1 < ids.length; at += ctx) {
    const r = lstmLossAndGrad(c, p, Array.prototype.slice.call(ids, at, at + ctx + 1), st, { forwardOnly: true, transform: o.transform, onInputs: o.onInputs, matmul: o.matmul });
    nll += r.nll;
    count += r.count;
    st = r.state;
  }
  return { perplexity: Math.exp(nll / count), nll, count };
}
