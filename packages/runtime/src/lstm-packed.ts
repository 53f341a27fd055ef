// LSTM inference on the runtime's Linear layers, so quantized gate matrices and head run packed (INT4
// g32 on the int4 matmul kernel with int8 activations, other INT-k on the formats' table GEMV): the
// input projections W_ih·x and the head are batched over a window's tokens, the recurrent W_hh·h is
// one GEMV per token. Biases, LN gains and the embedding stay f32.
import { type Kernels, LowbitError, loadKernels } from '@lowbit/kernels';
import { Linear, type LinearWeight } from './linear.js';
import { type LstmConfig, type LstmVec, checkLstmParams, lstmGateMatrices, lstmQuantizedNames } from './lstm.js';

export class PackedLstm {
  private constructor(
    readonly config: LstmConfig,
    private readonly linears: Map<string, Linear>,
    private readonly vectors: Map<string, Float32Array>,
  ) {}

  /**
   * From trained params: `weights` replaces any of lstmQuantizedNames (gate matrices after weight
   * norm, the head) with stored weights (packed tensors); the rest run as f32.
   */
  static async create(c: LstmConfig, params: Map<string, LstmVec>, weights: Map<string, LinearWeight> = new Map(), kernels?: Kernels): Promise<PackedLstm> {
    checkLstmParams(c, params);
    const k = kernels ?? (await loadKernels());
    const eff = lstmGateMatrices(c, params);
    eff.set('output.weight', params.get('output.weight') as LstmVec);
    const H = c.hidden;
    const linears = new Map<string, Linear>();
    try {
      for (const name of lstmQuantizedNames(c)) {
        const rows = name === 'output.weight' ? c.vocab : 4 * H;
        const w = weights.get(name) ?? { format: 'f32', shape: [rows, H], data: Float32Array.from(eff.get(name) as LstmVec) };
        if (w.shape[0] !== rows || w.shape[1] !== H) throw new LowbitError('E_SHAPE', `PackedLstm: ${name} is [${w.shape}], the model needs [${rows}, ${H}]`);
        linears.set(name, new Linear(k, name, w));
      }
    } catch (e) {
      for (const l of linears.values()) l.free();
      throw e;
    }
    for (const name of weights.keys()) if (!linears.has(name)) throw new LowbitError('E_MISSING', `PackedLstm: ${name} is not a quantizable matrix of this LSTM`);
    const vectors = new Map<string, Float32Array>();
    for (const [n, a] of params) if (!eff.has(n) && !n.endsWith('_gain') && !/\.w_(ih|hh)$/.test(n)) vectors.set(n, Float32Array.from(a));
    return new PackedLstm(c, linears, vectors);
  }

  /** Bytes of the matrices as stored (the embedding not counted: it is a lookup). */
  get matrixBytes(): number {
    let b = 0;
    for (const l of this.linears.values()) b += l.bytes;
    return b;
  }

  free(): void {
    for (const l of this.linears.values()) l.free();
  }

  /** Perplexity of `ids` as one stream, windows of `ctx` tokens with the state carried (as lstmPerplexity). */
  perplexity(ids: ArrayLike<number>, ctx = 256, onProgress?: (done: number, total: number) => void): { perplexity: number; nll: number; count: number } {
    const c = this.config;
    const H = c.hidden;
    const G = 4 * H;
    const V = c.vocab;
    if (ids.length < 2) throw new LowbitError('E_ARG', `PackedLstm: ${ids.length} token(s); at least 2 are needed`);
    if (!Number.isSafeInteger(ctx) || ctx < 1) throw new LowbitError('E_RANGE', `PackedLstm: ctx ${ctx} is not a positive integer`);
    for (let t = 0; t < ids.length; t++) if (!Number.isInteger(ids[t]) || ids[t] < 0 || ids[t] >= V) throw new LowbitError('E_RANGE', `PackedLstm: token ${ids[t]} at position ${t} is outside 0..${V - 1}`);
    const emb = this.vectors.get('token_embd.weight') as Float32Array;
    const h = Array.from({ length: c.layers }, () => new Float32Array(H));
    const cell = Array.from({ length: c.layers }, () => new Float64Array(H));
    const rec = new Float32Array(G);
    let nll = 0;
    let count = 0;
    const total = Math.ceil((ids.length - 1) / ctx);
    for (let at = 0, w = 0; at + 1 < ids.length; at += ctx, w++) {
      const T = Math.min(ctx, ids.length - 1 - at);
      let x = new Float32Array(T * H);
      for (let t = 0; t < T; t++) x.set(emb.subarray(ids[at + t] * H, (ids[at + t] + 1) * H), t * H);
      for (let l = 0; l < c.layers; l++) {
        const zx = (this.linears.get(`lstm.${l}.w_ih`) as Linear).apply(x, T);
        const whh = this.linears.get(`lstm.${l}.w_hh`) as Linear;
        const b = this.vectors.get(`lstm.${l}.bias`) as Float32Array;
        const gam = this.vectors.get(`lstm.${l}.ln_norm.weight`);
        const out = new Float32Array(T * H);
        const z = new Float64Array(G);
        for (let t = 0; t < T; t++) {
          whh.apply(h[l], 1, rec);
          for (let r = 0; r < G; r++) z[r] = zx[t * G + r] + rec[r];
          if (gam) {
            let mu = 0;
            for (let r = 0; r < G; r++) mu += z[r];
            mu /= G;
            let va = 0;
            for (let r = 0; r < G; r++) va += (z[r] - mu) ** 2;
            const is = 1 / Math.sqrt(va / G + 1e-5);
            for (let r = 0; r < G; r++) z[r] = gam[r] * (z[r] - mu) * is;
          }
          for (let j = 0; j < H; j++) {
            const ig = 1 / (1 + Math.exp(-(z[j] + b[j])));
            const fg = 1 / (1 + Math.exp(-(z[H + j] + b[H + j])));
            const gg = Math.tanh(z[2 * H + j] + b[2 * H + j]);
            const og = 1 / (1 + Math.exp(-(z[3 * H + j] + b[3 * H + j])));
            cell[l][j] = fg * cell[l][j] + ig * gg;
            h[l][j] = og * Math.tanh(cell[l][j]);
          }
          out.set(h[l], t * H);
        }
        x = out;
      }
      const logits = (this.linears.get('output.weight') as Linear).apply(x, T);
      const bout = this.vectors.get('output.bias') as Float32Array;
      for (let t = 0; t < T; t++) {
        let max = Number.NEGATIVE_INFINITY;
        for (let v = 0; v < V; v++) if (logits[t * V + v] + bout[v] > max) max = logits[t * V + v] + bout[v];
        let sum = 0;
        for (let v = 0; v < V; v++) sum += Math.exp(logits[t * V + v] + bout[v] - max);
        const y = ids[at + t + 1];
        nll += Math.log(sum) + max - (logits[t * V + y] + bout[y]);
        count++;
      }
      onProgress?.(w + 1, total);
    }
    return { perplexity: Math.exp(nll / count), nll, count };
  }
}
