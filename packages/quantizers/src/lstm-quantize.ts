// Quantizing the runtime's LSTM language model: its gate matrices (after weight norm, so each row's
// gain is folded into the rows the grid sees) and its head onto INT-k grids, by RTN or GPTQ (inputs
// collected from a forward over calibration text), as packed tensors PackedLstm runs without decoding;
// and the fake quantization QAT trains through (the same RTN, so the rounding QAT's last forward saw
// is the rounding stored).
import { LowbitError } from '@lowbit/kernels';
import { type LinearWeight, type LstmConfig, type LstmMatmul, type LstmVec, linearWeightFromPacked, lstmGateMatrices, lstmPerplexity, lstmQuantizedNames } from '@lowbit/runtime';
import { Gptq } from './gptq.js';
import { createQuantizer } from './quantizer.js';

export interface LstmGrid {
  /** 2..8 */
  bits: number;
  /** Columns per scale (a divisor of hidden, or 0 = one scale per output row). */
  group: number;
}

function checkGrid(c: LstmConfig, g: LstmGrid): void {
  if (!Number.isInteger(g.bits) || g.bits < 2 || g.bits > 8) throw new LowbitError('E_RANGE', `LSTM quantization: bits ${g.bits} is outside 2..8`);
  if (!Number.isInteger(g.group) || g.group < 0 || (g.group > 0 && c.hidden % g.group !== 0)) throw new LowbitError('E_RANGE', `LSTM quantization: group ${g.group} does not divide hidden ${c.hidden} (0 = per output channel)`);
}

function rowsOf(c: LstmConfig, name: string): number {
  return name === 'output.weight' ? c.vocab : 4 * c.hidden;
}

/** The matrices the forward multiplies by (gate matrices after weight norm, the head), as f32. */
function matrices(c: LstmConfig, params: Map<string, LstmVec>): Map<string, Float32Array> {
  const eff = lstmGateMatrices(c, params);
  eff.set('output.weight', params.get('output.weight') as LstmVec);
  return new Map([...eff].map(([n, a]) => [n, Float32Array.from(a)]));
}

/** For LstmTrainOptions.transform: Ŵ = RTN(W) on the grid (symmetric INT-k), a fresh array. */
export function lstmFakeQuant(c: LstmConfig, g: LstmGrid): (name: string, w: LstmVec) => Float32Array {
  checkGrid(c, g);
  const q = createQuantizer({ method: 'rtn', format: 'int', bits: g.bits, group: g.group, symmetric: true });
  return (name, w) => q.quantize({ weights: Float32Array.from(w), shape: [rowsOf(c, name), c.hidden] }).weights;
}

export interface LstmQuantizeOptions extends LstmGrid {
  method: 'rtn' | 'gptq';
  /** GPTQ: token ids of the calibration text (read as one stream). */
  calibration?: ArrayLike<number>;
  /** GPTQ: window length of the calibration forward. Default 64. */
  ctx?: number;
  /** GPTQ: the calibration forward's batched products (lstmWasmMatmul). */
  matmul?: LstmMatmul;
}

export interface QuantizedLstm {
  /** Per quantized matrix: the packed weights for PackedLstm.create. */
  weights: Map<string, LinearWeight>;
  /** Per quantized matrix: Ŵ, the values the packed tensor decodes to. */
  values: Map<string, Float32Array>;
  /** Stored bits per weight of the quantized matrices (codes and f32 scales). */
  bitsPerWeight: number;
}

export function quantizeLstm(c: LstmConfig, params: Map<string, LstmVec>, o: LstmQuantizeOptions): QuantizedLstm {
  checkGrid(c, o);
  const names = lstmQuantizedNames(c);
  let stats: Map<string, Gptq> | null = null;
  if (o.method === 'gptq') {
    const ids = o.calibration;
    if (!ids || ids.length < 2) throw new LowbitError('E_ARG', `LSTM GPTQ needs calibration tokens (got ${ids?.length ?? 0})`);
    const s = new Map(names.map((n) => [n, new Gptq(c.hidden)]));
    lstmPerplexity(c, params, ids, { ctx: o.ctx ?? 64, matmul: o.matmul, onInputs: (name, x, rows) => (s.get(name) as Gptq).addBatch(x, rows) });
    stats = s;
  }
  const q = createQuantizer({ method: o.method, format: 'int', bits: o.bits, group: o.group, symmetric: true });
  const mats = matrices(c, params);
  const weights = new Map<string, LinearWeight>();
  const values = new Map<string, Float32Array>();
  let bits = 0;
  let count = 0;
  for (const name of names) {
    const shape: [number, number] = [rowsOf(c, name), c.hidden];
    const r = q.quantize({ weights: mats.get(name) as Float32Array, shape, stats: stats?.get(name) });
    if (!r.packed || !('kind' in r.packed) || r.packed.kind !== 'int') throw new LowbitError('E_FORMAT', `LSTM quantization: ${name} gave no INT-k tensor`);
    const w = linearWeightFromPacked(r.packed);
    weights.set(name, w);
    values.set(name, r.weights);
    const scales = shape[0] * (o.group ? c.hidden / o.group : 1);
    bits += shape[0] * shape[1] * o.bits + scales * 32;
    count += shape[0] * shape[1];
  }
  return { weights, values, bitsPerWeight: bits / count };
}
