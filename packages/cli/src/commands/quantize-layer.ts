import { loadKernels } from '@lowbit/kernels';
import { npyMatrix, quantizeLayer, readNpy, writeNpy } from '@lowbit/quantizers';
import { type Command, UsageError, intOption, numberOption } from '../command.js';

export const quantizeLayerCommand: Command = {
  name: 'quantize-layer',
  summary: 'quantize one linear layer (W.npy, out × in) with RTN or GPTQ on calibration inputs (X.npy, samples × in)',
  usage: 'lowbit quantize-layer --weights W.npy --inputs X.npy --method rtn|gptq [--bits 4] [--group 128] [--act-order] [--static-groups] [--sym] [--damp 0.01] [--exact] [--json] [--out Wq.npy]',
  options: {
    weights: { type: 'string' },
    inputs: { type: 'string' },
    method: { type: 'string' },
    bits: { type: 'string' },
    group: { type: 'string' },
    'act-order': { type: 'boolean' },
    'static-groups': { type: 'boolean' },
    sym: { type: 'boolean' },
    damp: { type: 'string' },
    exact: { type: 'boolean' },
    out: { type: 'string' },
  },
  async run(ctx) {
    const wPath = ctx.values.weights as string | undefined;
    const xPath = ctx.values.inputs as string | undefined;
    const method = (ctx.values.method as string | undefined) ?? 'gptq';
    if (!wPath || !xPath) throw new UsageError('--weights W.npy and --inputs X.npy are required');
    if (method !== 'rtn' && method !== 'gptq') throw new UsageError(`--method must be rtn or gptq, got "${method}"`);
    const W = npyMatrix(await readNpy(wPath), wPath, 'weights');
    const X = npyMatrix(await readNpy(xPath), xPath, 'inputs');
    const r = quantizeLayer(W.data, W.shape, X.data, X.shape, {
      method,
      bits: intOption(ctx, 'bits', 4),
      group: intOption(ctx, 'group', 0),
      symmetric: Boolean(ctx.values.sym),
      actOrder: Boolean(ctx.values['act-order']),
      staticGroups: Boolean(ctx.values['static-groups']),
      damp: numberOption(ctx, 'damp', 0.01),
      // Layers with >= 512 inputs take the f32 WASM matmul path (XᵀX, LDLQ factorization, lazy
      // updates; ~0.5% of codes flip on rounding midpoints); --exact keeps every layer on f64.
      kernels: ctx.values.exact ? undefined : await loadKernels(),
    });
    const out = ctx.values.out as string | undefined;
    if (out) await writeNpy(out, r.weights, W.shape);
    const { weights: _w, packed: _p, ...summary } = r;
    ctx.print(`${method} int${r.bits} ${r.group ? `g${r.group}` : 'per-channel'} ${r.sym ? 'sym' : 'asym'}${r.act_order ? ' act-order' : ''}${r.static_groups ? ' static-groups' : ''}: [${r.rows}, ${r.cols}] on ${r.samples} samples`);
    ctx.print(`  err_output ‖WXᵀ − ŴXᵀ‖² = ${r.err_output.toExponential(4)} (${(100 * r.err_output_rel).toFixed(3)}% of ‖WXᵀ‖²), err_weight ‖W − Ŵ‖² = ${r.err_weight.toExponential(4)}`);
    ctx.print(`  ${r.bits_per_weight.toFixed(3)} bits/weight, ${r.seconds.toFixed(3)} s${out ? `, wrote ${out}` : ''}`);
    return { ...summary, weights_file: wPath, inputs_file: xPath, out: out ?? null };
  },
};
