// RTN vs GPTQ perplexity on the embedded model: node scripts/ppl-study.mjs [maxWindows]
// Calibrates on TinyStories-train-excerpt, evaluates on TinyStories-valid (ctx 256, lowbit eval's protocol).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { quantizeModel } from '../dist/index.js';

const maxWindows = Number(process.argv[2] ?? 32);
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const valid = readFileSync(fileURLToPath(validTextUrl), 'utf8');
const path = fileURLToPath(defaultModelUrl);
const rows = [];
const fp = await loadModel(path);
if (!process.env.CONFIGS) rows.push({ method: 'fp32', bits: 32, group: '-', bpw: 32, ppl: perplexity(fp, valid, { ctx: 256 }).perplexity, seconds: 0, sumErr: 0 });
const configs = [];
for (const bits of [4, 3]) for (const group of [32, 0]) for (const method of ['rtn', 'gptq']) configs.push({ bits, group, method });
if (process.env.ACT_ORDER) for (const c of [...configs]) if (c.method === 'gptq') configs.push({ ...c, method: 'gptq', actOrder: true });
// CONFIGS='[{"method":"gptq","bits":4,"group":32,"smooth":0.5}]' replaces the default list
if (process.env.CONFIGS) configs.splice(0, configs.length, ...JSON.parse(process.env.CONFIGS));
for (const c of configs) {
  const model = await loadModel(path);
  const r = quantizeModel(model, { ...c, calibration, ctx: 256, maxWindows, measure: true });
  const ppl = perplexity(model, valid, { ctx: 256 }).perplexity;
  rows.push({ method: (c.format ? `${c.format} ` : '') + (c.smooth !== undefined ? `smoothquant(α=${c.smooth})+` : '') + c.method + (c.actOrder ? '+act-order' : '') + (c.staticGroups ? '+static' : '') + (c.adaDim ? ' (AdaDim)' : '') + (c.clipSearch ? ' +clip search' : '') + (c.symmetric === false ? ' asym' : ''), bits: c.bits, group: c.group || 'per-channel', bpw: r.bitsPerWeight, ppl, seconds: r.seconds, sumErr: r.layers.reduce((s, l) => s + l.errOutput, 0) });
  console.error(JSON.stringify(rows.at(-1)));
  if (process.env.LAYERS) for (const l of r.layers) console.error(`  ${l.name} out ${l.errOutput.toExponential(3)} w ${l.errWeight.toExponential(3)}`);
}
console.log('| method | bits | group | bits/weight | ppl (valid, ctx 256) | Σ layer output err | time s |');
console.log('|---|---|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.method} | ${r.bits} | ${r.group} | ${r.bpw.toFixed(3)} | ${r.ppl.toFixed(4)} | ${r.sumErr.toExponential(3)} | ${r.seconds.toFixed(1)} |`);
