// One layer of a model as the data `quantizeLayer` takes: its weights W [out, in] as f32 and the
// inputs X [samples, in] it sees on calibration text, cut into windows exactly as quantizeModel's
// calibration cuts them (so a layer exported from the first block sees what quantizeModel sees there;
// later blocks see the full-precision model's inputs, as no layer before them is quantized).
import { type DecoderModel, Session } from '@lowbit/runtime';
import { type CalibrationOptions, calibrationWindows } from './calibrate.js';
import { f32Weights } from './source-weights.js';

export interface LayerData {
  name: string;
  weights: { data: Float32Array; shape: [number, number] };
  inputs: { data: Float32Array; shape: [number, number] };
  /** Calibration windows run (each of at most `ctx` tokens). */
  windows: number;
}

/** W and the calibration inputs X of the linear layer `name` (a GGUF tensor name, e.g. blk.1.attn_q.weight). */
export function layerData(model: DecoderModel, name: string, calibration: string, o: CalibrationOptions = {}): LayerData {
  const lin = model.linear(name); // E_MISSING naming the layer when there is none
  const weights = f32Weights(name, lin.source);
  const cut = calibrationWindows(model, calibration, o);
  const chunks: Float32Array[] = [];
  const session = new Session(model, {
    ctx: cut.ctx,
    // x is the session's scratch buffer: copied before the next layer overwrites it
    onLinearInput: (n, x, batch, cols) => {
      if (n === name) chunks.push(x.slice(0, batch * cols));
    },
  });
  for (const w of cut.windows) {
    session.reset();
    session.forward(w);
  }
  const samples = chunks.reduce((s, c) => s + c.length, 0) / lin.cols;
  const data = new Float32Array(samples * lin.cols);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { name, weights: { data: weights.data, shape: [lin.rows, lin.cols] }, inputs: { data, shape: [samples, lin.cols] }, windows: cut.windows.length };
}
