import { loadKernels } from '@lowbit/kernels';
import { QUANTIZE_DEFAULTS, quantizeLayer } from '@lowbit/quantizers';
import { npyMatrix, readNpy, writeNpy } from '@lowbit/runtime';
import { UsageError, defineCommand } from '../command.js';
import { checkInputFile, checkOutputFile } from '../paths.js';
import { quantizerOptions } from './quantizer-options.js';

export const quantizeLayerCommand = defineCommand({
  name: 'quantize-layer',
  summary: 'quantize one linear layer (W.npy, out × in) with RTN or GPTQ on calibration inputs (X.npy, samples × in); lowbit export-layer writes both from a model',
  options: {
    weights: { type: 'string', placeholder: 'W.npy', required: true, description: 'the layer weights, f32/f64 .npy [out, in] (lowbit export-layer writes one)' },
    inputs: { type: 'string', placeholder: 'X.npy', required: true, description: 'calibration inputs the layer sees, f32/f64 .npy [samples, in]' },
    bits: { type: 'integer', min: 2, max: 8, default: QUANTIZE_DEFAULTS.bits, description: 'INT-k bits' },
    ...quantizerOptions,
    sym: { type: 'boolean', description: 'symmetric grid: the default, kept for existing scripts (see --asym)' },
    exact: { type: 'boolean', description: 'keep every layer on f64 (layers with ≥ 512 inputs otherwise use f32 WASM matmuls)' },
    out: { type: 'string', short: 'o', placeholder: 'Wq.npy', defaultText: 'none (nothing written)', description: 'write the quantized weights Ŵ as f32 .npy' },
  },
  examples: [
    'lowbit export-layer --layer blk.1.attn_q.weight --out layer/ && lowbit quantize-layer --weights layer/W.npy --inputs layer/X.npy --bits 3',
    'lowbit quantize-layer --weights W.npy --inputs X.npy --method rtn --bits 4 --group 128 --asym --out Wq.npy --json',
  ],
  async run(ctx) {
    const v = ctx.values;
    if (v.sym && v.asym) throw new UsageError('--sym and --asym contradict each other');
    checkInputFile(v.weights, 'a .npy file');
    checkInputFile(v.inputs, 'a .npy file');
    if (v.out) checkOutputFile(v.out);
    const W = npyMatrix(await readNpy(v.weights), v.weights, 'weights');
    const X = npyMatrix(await readNpy(v.inputs), v.inputs, 'inputs');
    const r = quantizeLayer(W.data, W.shape, X.data, X.shape, {
      method: v.method,
      bits: v.bits,
      group: v.group,
      symmetric: !v.asym,
      actOrder: v['act-order'],
      staticGroups: v['static-groups'],
      damp: v.damp,
      // Layers with >= 512 inputs take the f32 WASM matmul path (XᵀX, LDLQ factorization, lazy
      // updates; ~0.5% of codes flip on rounding midpoints); --exact keeps every layer on f64.
      kernels: v.exact ? undefined : await loadKernels(),
    });
    if (v.out) await writeNpy(v.out, r.weights, W.shape);
    const { weights: _w, packed: _p, ...summary } = r;
    ctx.print(`${r.method} int${r.bits} ${r.group ? `g${r.group}` : 'per-channel'} ${r.sym ? 'sym' : 'asym'}${r.act_order ? ' act-order' : ''}${r.static_groups ? ' static-groups' : ''}: [${r.rows}, ${r.cols}] on ${r.samples} samples`);
    ctx.print(`  err_output ‖WXᵀ − ŴXᵀ‖² = ${r.err_output.toExponential(4)} (${(100 * r.err_output_rel).toFixed(3)}% of ‖WXᵀ‖²), err_weight ‖W − Ŵ‖² = ${r.err_weight.toExponential(4)}`);
    ctx.print(`  ${r.bits_per_weight.toFixed(3)} bits/weight, ${r.seconds.toFixed(3)} s; ${v.out ? `wrote ${v.out}` : 'nothing written (give --out Wq.npy to keep Ŵ)'}`);
    return { ...summary, weights_file: v.weights, inputs_file: v.inputs, out: v.out ?? null };
  },
});
