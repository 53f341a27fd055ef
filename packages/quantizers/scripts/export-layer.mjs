// Writes one real layer of the embedded model and its calibration inputs as .npy:
//   node scripts/export-layer.mjs blk.2.ffn_down.weight outdir [windows]
// W.npy: f32 [out, in] weights; X.npy: f32 [samples, in] inputs captured on TinyStories-train-excerpt.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { writeNpy } from '../dist/index.js';

const [name = 'blk.2.ffn_down.weight', dir = '.', windows = '4'] = process.argv.slice(2);
const model = await loadModel(fileURLToPath(defaultModelUrl));
const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const lin = model.linear(name);
const chunks = [];
perplexity(model, text, { ctx: 256, maxWindows: Number(windows), onLinearInput: (n, x, batch, cols) => n === name && chunks.push(x.slice(0, batch * cols)) });
const X = new Float32Array(chunks.reduce((s, c) => s + c.length, 0));
let o = 0;
for (const c of chunks) {
  X.set(c, o);
  o += c.length;
}
mkdirSync(dir, { recursive: true });
await writeNpy(join(dir, 'W.npy'), lin.source.data, [lin.rows, lin.cols]);
await writeNpy(join(dir, 'X.npy'), X, [X.length / lin.cols, lin.cols]);
console.log(`${name}: W [${lin.rows}, ${lin.cols}], X [${X.length / lin.cols}, ${lin.cols}] -> ${dir}`);
