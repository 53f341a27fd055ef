// A compressed KV cache: every layer's keys and values stored per token at 4, 8, 16 or 32 bits, and
// pairs of adjacent layers sharing one direction per token (MiniCache, minicache.ts). It rides on a
// Session as its `kvCache` hook: after each layer's attention the states just written are encoded,
// stored, decoded and written back, so every later token attends to exactly what the store holds.
// The attention kernel still reads an f32 mirror of the decoded states (a kernel that reads the
// codes themselves is not written); the bytes reported are those of the store.
//
// int8 / int4: symmetric per (token, kv head) groups, as KV quantizers that quantize per token
// (KIVI's value cache, the MiniCache paper's 4-bit setting): scale = absmax/(2^(b−1) − 1) rounded to
// fp16, code = round(x/scale) clamped to [−2^(b−1), 2^(b−1) − 1]. 16 bits: each value as fp16.
// 32 bits: f32, the states unchanged.
import { LowbitError, f16ToF32, f32ToF16 } from '@lowbit/kernels';
import type { KvCacheHook, LayerCache } from './forward.js';
import { type MiniCacheOptions, RetentionRule, checkMiniCache, norm, slerp } from './minicache.js';
import type { LlamaConfig } from './model.js';

export type KvBits = 4 | 8 | 16 | 32;
export const KV_BITS: readonly KvBits[] = [4, 8, 16, 32];

export function checkKvBits(bits: number): KvBits {
  if (!KV_BITS.includes(bits as KvBits)) throw new LowbitError('E_RANGE', `kv cache: bits ${bits} is not one of ${KV_BITS.join(', ')}`);
  return bits as KvBits;
}

const fp16 = (v: number) => f16ToF32(f32ToF16(v));

/** rows × (nKvHeads groups of headDim) stored at `bits`; the codes are the truth, get() decodes them. */
export class KvRows {
  /** Bytes of one stored row (codes and scales). */
  readonly rowBytes: number;
  private readonly f32?: Float32Array;
  private readonly half?: Uint16Array;
  private readonly codes?: Uint8Array;
  private readonly scales?: Uint16Array;
  private readonly groups: number;
  private readonly groupBytes: number;

  constructor(
    readonly bits: KvBits,
    readonly rows: number,
    readonly width: number,
    readonly group: number,
  ) {
    this.groups = width / group;
    if (!Number.isInteger(this.groups)) throw new LowbitError('E_SHAPE', `kv cache: width ${width} is not a multiple of the group ${group}`);
    this.groupBytes = Math.ceil((group * bits) / 8);
    if (bits === 32) this.f32 = new Float32Array(rows * width);
    else if (bits === 16) this.half = new Uint16Array(rows * width);
    else {
      this.codes = new Uint8Array(rows * this.groups * this.groupBytes);
      this.scales = new Uint16Array(rows * this.groups);
    }
    this.rowBytes = bits >= 16 ? (width * bits) / 8 : this.groups * (this.groupBytes + 2);
  }

  put(row: number, x: Float32Array, xo: number): void {
    const w = this.width;
    if (this.f32) this.f32.set(x.subarray(xo, xo + w), row * w);
    else if (this.half) for (let i = 0; i < w; i++) this.half[row * w + i] = f32ToF16(x[xo + i]);
    else this.putInt(row, x, xo);
  }

  private putInt(row: number, x: Float32Array, xo: number): void {
    const { group, bits, groupBytes } = this;
    const codes = this.codes as Uint8Array;
    const qmax = 2 ** (bits - 1) - 1;
    for (let g = 0; g < this.groups; g++) {
      const o = xo + g * group;
      let amax = 0;
      for (let i = 0; i < group; i++) amax = Math.max(amax, Math.abs(x[o + i]));
      const h = f32ToF16(amax / qmax);
      (this.scales as Uint16Array)[row * this.groups + g] = h;
      const s = f16ToF32(h);
      const base = (row * this.groups + g) * groupBytes;
      codes.fill(0, base, base + groupBytes);
      for (let i = 0; i < group; i++) {
        const q = s === 0 ? 0 : Math.max(-qmax - 1, Math.min(qmax, Math.round(x[o + i] / s)));
        if (bits === 8) codes[base + i] = q & 0xff;
        else codes[base + (i >> 1)] |= (q & 0xf) << ((i & 1) * 4); // element 2j low nibble, 2j+1 high
      }
    }
  }

  get(row: number, out: Float32Array, oo: number): void {
    const w = this.width;
    if (this.f32) out.set(this.f32.subarray(row * w, (row + 1) * w), oo);
    else if (this.half) for (let i = 0; i < w; i++) out[oo + i] = f16ToF32(this.half[row * w + i]);
    else {
      const { group, bits, groupBytes } = this;
      const codes = this.codes as Uint8Array;
      for (let g = 0; g < this.groups; g++) {
        const s = f16ToF32((this.scales as Uint16Array)[row * this.groups + g]);
        const base = (row * this.groups + g) * groupBytes;
        for (let i = 0; i < group; i++) {
          const q = bits === 8 ? (codes[base + i] << 24) >> 24 : (((codes[base + (i >> 1)] >> ((i & 1) * 4)) & 0xf) << 28) >> 28;
          out[oo + g * group + i] = q * s;
        }
      }
    }
  }
}

export interface KvCompressionOptions {
  /** Storage width of every cached state: 4, 8 (per token and kv head), 16 (fp16) or 32 (f32, default). */
  bits?: number;
  /**
   * Width of the values alone (default: `bits`). Per-token groups suit values but not keys, whose
   * outlier channels set every group's scale: on stories260K int4 values cost nothing, int4 keys
   * double the perplexity (README).
   */
  valueBits?: number;
  /** Merge adjacent layers (MiniCache); absent: no merging. */
  minicache?: MiniCacheOptions;
}

export interface KvCacheStats {
  /** Positions stored. */
  tokens: number;
  /** Bytes the store holds for them (codes, scales, magnitudes, retained tokens and their indices). */
  bytes: number;
  bytesPerToken: number;
  /** The same cache in fp16 with nothing merged, per token (the MiniCache paper's baseline). */
  fp16BytesPerToken: number;
  /** fp16BytesPerToken / bytesPerToken. */
  ratio: number;
  /** Fraction of merged-pair tokens kept unmerged, keys and values (NaN without pairs). */
  retained: { keys: number; values: number };
  /** Mean angular distance arccos(cos)/π between the paired layers' states (0.5: orthogonal; NaN without pairs). */
  distance: { keys: number; values: number };
}

/** One merged pair's store for keys or for values. */
class PairRows {
  readonly dirs: KvRows; // merged direction, or layer a's state when retained
  readonly extra: KvRows; // layer b's state, retained tokens only
  readonly mags: Float32Array; // (rows, 2) ‖x_a‖, ‖x_b‖; fp16 values below 32 bits
  readonly kept: Uint8Array; // 1 = retained
  readonly rule: RetentionRule;
  constructor(bits: KvBits, rows: number, width: number, group: number, gamma: number, range?: [number, number]) {
    this.dirs = new KvRows(bits, rows, width, group);
    this.extra = new KvRows(bits, rows, width, group);
    this.mags = new Float32Array(rows * 2);
    this.kept = new Uint8Array(rows);
    this.rule = new RetentionRule(gamma, range);
  }
}

export class CompressedKvCache implements KvCacheHook {
  readonly bits: KvBits;
  readonly valueBits: KvBits;
  readonly pairs: [number, number][];
  readonly t: number;
  readonly gamma: number;
  private readonly kvDim: number;
  private readonly layers: { keys: KvRows; values: KvRows }[] = []; // unmerged layers (index: layer)
  private readonly pairRows = new Map<number, { keys: PairRows; values: PairRows }>(); // by the pair's second layer
  private readonly firstOfPair = new Set<number>();
  private readonly dir: Float32Array;
  private tokens = 0;
  // totals of the windows before the current one (reset() closes a window)
  private done = { tokens: 0, bytes: 0, keptKeys: 0, keptValues: 0 };

  constructor(
    readonly config: LlamaConfig,
    readonly ctx: number,
    options: KvCompressionOptions = {},
  ) {
    this.bits = checkKvBits(options.bits ?? 32);
    this.valueBits = checkKvBits(options.valueBits ?? this.bits);
    const mc = checkMiniCache(options.minicache ?? { pairs: [] }, config.nLayers);
    this.pairs = mc.pairs;
    this.t = mc.t;
    this.gamma = mc.gamma;
    if (!(Number.isInteger(ctx) && ctx >= 1)) throw new LowbitError('E_RANGE', `kv cache: ctx ${ctx} must be a positive integer`);
    this.kvDim = config.nKvHeads * config.headDim;
    this.dir = new Float32Array(this.kvDim);
    for (const [i, [a, b]] of this.pairs.entries()) {
      this.firstOfPair.add(a);
      const rows = (bits: KvBits, range?: [number, number]) => new PairRows(bits, ctx, this.kvDim, config.headDim, this.gamma, range);
      this.pairRows.set(b, { keys: rows(this.bits, mc.ranges?.[i].keys), values: rows(this.valueBits, mc.ranges?.[i].values) });
    }
    for (let l = 0; l < config.nLayers; l++) {
      const rows = (bits: KvBits) => new KvRows(bits, ctx, this.kvDim, config.headDim);
      this.layers.push({ keys: rows(this.bits), values: rows(this.valueBits) });
    }
  }

  reset(): void {
    const w = this.window();
    this.done = { tokens: this.done.tokens + w.tokens, bytes: this.done.bytes + w.bytes, keptKeys: this.done.keptKeys + w.keptKeys, keptValues: this.done.keptValues + w.keptValues };
    this.tokens = 0;
    for (const p of this.pairRows.values()) {
      p.keys.rule.reset();
      p.values.rule.reset();
    }
  }

  afterAttention(layer: number, pos: number, n: number, _q: Float32Array, cache: (layer: number) => LayerCache): void {
    if (pos + n > this.ctx) throw new LowbitError('E_RANGE', `kv cache: positions up to ${pos + n} exceed its ${this.ctx} rows (make it with the session's ctx)`);
    if (this.firstOfPair.has(layer)) return; // its states wait, exact, for the pair's second layer
    const pair = this.pairRows.get(layer);
    const here = cache(layer);
    const d = this.kvDim;
    if (!pair) {
      const { keys, values } = this.layers[layer];
      for (let p = pos; p < pos + n; p++) {
        keys.put(p, here.keys, p * d);
        keys.get(p, here.keys, p * d);
        values.put(p, here.values, p * d);
        values.get(p, here.values, p * d);
      }
    } else {
      const first = cache(layer - 1);
      for (let p = pos; p < pos + n; p++) {
        this.merge(pair.keys, p, first.keys, here.keys);
        this.merge(pair.values, p, first.values, here.values);
      }
    }
    this.tokens = Math.max(this.tokens, pos + n);
  }

  /** Stores position p of a pair (states xa of the first layer, xb of the second) and writes back what it stores. */
  private merge(s: PairRows, p: number, xa: Float32Array, xb: Float32Array): void {
    const d = this.kvDim;
    const o = p * d;
    const dist = slerp(xa, o, xb, o, d, this.t, this.dir);
    if (s.rule.retain(dist)) {
      s.kept[p] = 1;
      s.dirs.put(p, xa, o);
      s.dirs.get(p, xa, o);
      s.extra.put(p, xb, o);
      s.extra.get(p, xb, o);
      return;
    }
    s.kept[p] = 0;
    const round = s.dirs.bits === 32 ? Math.fround : fp16;
    const na = round(norm(xa, o, d));
    const nb = round(norm(xb, o, d));
    s.mags[2 * p] = na;
    s.mags[2 * p + 1] = nb;
    s.dirs.put(p, this.dir, 0);
    s.dirs.get(p, this.dir, 0);
    for (let i = 0; i < d; i++) {
      xa[o + i] = na * this.dir[i];
      xb[o + i] = nb * this.dir[i];
    }
  }

  /** Bytes and retained counts of the current sequence. */
  private window() {
    const n = this.tokens;
    let bytes = 0;
    const merged = new Set(this.pairs.flat());
    for (let l = 0; l < this.config.nLayers; l++) if (!merged.has(l)) bytes += n * (this.layers[l].keys.rowBytes + this.layers[l].values.rowBytes);
    let keptKeys = 0;
    let keptValues = 0;
    for (const { keys, values } of this.pairRows.values()) {
      for (const [s, isKey] of [[keys, true], [values, false]] as const) {
        for (let p = 0; p < n; p++) {
          // retained: both states and a 4-byte position index; merged: one direction and two magnitudes
          bytes += s.kept[p] ? 2 * s.dirs.rowBytes + 4 : s.dirs.rowBytes + 2 * (s.dirs.bits === 32 ? 4 : 2);
          if (s.kept[p] && isKey) keptKeys++;
          if (s.kept[p] && !isKey) keptValues++;
        }
      }
    }
    return { tokens: n, bytes, keptKeys, keptValues };
  }

  /** Over every sequence this cache has held (each reset() closes one) and the current one. */
  stats(): KvCacheStats {
    const w = this.window();
    const tokens = this.done.tokens + w.tokens;
    const bytes = this.done.bytes + w.bytes;
    const fp16BytesPerToken = this.config.nLayers * 2 * this.kvDim * 2;
    const bytesPerToken = tokens > 0 ? bytes / tokens : Number.NaN;
    const pairTokens = this.pairs.length * tokens;
    const kept = (k: number) => (pairTokens ? k / pairTokens : Number.NaN);
    return {
      tokens,
      bytes,
      bytesPerToken,
      fp16BytesPerToken,
      ratio: fp16BytesPerToken / bytesPerToken,
      retained: { keys: kept(this.done.keptKeys + w.keptKeys), values: kept(this.done.keptValues + w.keptValues) },
      distance: { keys: kept([...this.pairRows.values()].reduce((a, p) => a + p.keys.rule.sum, 0)), values: kept([...this.pairRows.values()].reduce((a, p) => a + p.values.rule.sum, 0)) },
    };
  }
}
