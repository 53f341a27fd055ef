#!/usr/bin/env node
// Time and peak memory, layer by layer, of lowbit's whole quantization pipeline on a 1B-class model
// (issue #8): sequential calibration through the runtime, GPTQ (or RTN) per linear layer, each layer
// replaced by its packed int4 tensor before the next group is calibrated.
//
//   node tools/make-throughput-model.mjs "$LOWBIT_MODELS" Q8_0        # once (~1.1 GB, random weights)
//   npx turbo run build --filter=@lowbit/quantizers...
//   node tools/quantize-1b.mjs [--quick | --blocks N] [--method gptq|rtn|both] [--windows 2] [--ctx 128] [--model file.gguf] [--json out.json]
//
// The default model is the runtime benchmark's random-weight 1B-class Llama (TinyLlama-1.1B's shapes)
// in Q8_0: its weights say nothing about quality, so this reports time and memory only. It runs from
// Q8_0 because a 1B model in f32 (~4.4 GB) does not fit the runtime's 4 GiB wasm32 memory: each
// layer is dequantized to f32 just before it is quantized, and replaced by int4 (keepPacked).
// --quick (2 blocks) or --blocks N stops after N transformer blocks. Calibration caches each window's
// residual stream at the current block's input (quantizeModel's default), so a pass runs one block.
import { readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceUsage } from 'node:process';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { loadModel, writeTextAtomic } from '@lowbit/runtime';
import { quantizeModel } from '@lowbit/quantizers';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const modelPath = opt('model', join(process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models'), 'throughput-1b-Q8_0.gguf'));
const blocks = argv.includes('--quick') ? 2 : Number(opt('blocks', 'Infinity'));
const methods = (opt('method', 'both') === 'both' ? ['gptq', 'rtn'] : [opt('method')]);
const windows = Number(opt('windows', '2'));
const ctx = Number(opt('ctx', '128'));
const jsonOut = opt('json');
if (!existsSync(modelPath)) {
  console.error(`${modelPath} not found: run node tools/make-throughput-model.mjs <dir> Q8_0 first (or pass --model)`);
  process.exit(2);
}
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const MiB = 2 ** 20;
const mem = () => {
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB, external: m.external / MiB, maxRss: (resourceUsage().maxRSS * 1024) / MiB };
};
class Enough extends Error {}

const results = {};
for (const method of methods) {
  const m0 = mem();
  const tLoad = performance.now();
  const model = await loadModel(modelPath);
  const loadS = (performance.now() - tLoad) / 1000;
  const mLoaded = mem();
  const wasmMiB = () => model.kernels.memory.buffer.byteLength / MiB;
  console.log(`\n${method.toUpperCase()} int4 g128 sym on ${model.name}: ${model.config.nLayers} blocks, dim ${model.config.dim}, ffn ${model.config.hiddenDim}; ` +
    `load ${loadS.toFixed(1)} s, RSS ${m0.rss.toFixed(0)} -> ${mLoaded.rss.toFixed(0)} MiB, WASM memory ${wasmMiB().toFixed(0)} MiB; calibration ${windows} x ${ctx} tokens`);
  console.log('| layer | shape | quantize s | wall s (incl. calibration pass) | RSS MiB | heap MiB | external MiB | WASM MiB | peak RSS so far MiB |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  const rows = [];
  let last = performance.now();
  const t0 = last;
  const perBlock = model.linears().filter((l) => l.name.startsWith('blk.0.')).length;
  try {
    quantizeModel(model, {
      method, bits: 4, group: 128, symmetric: true, keepPacked: true,
      calibration: method === 'gptq' ? calibration : undefined, ctx, maxWindows: windows,
      onLayer: (r, done) => {
        const now = performance.now();
        const m = mem();
        const row = { name: r.name, shape: [r.rows, r.cols], seconds: r.seconds, wall: (now - last) / 1000, ...m, wasm: wasmMiB() };
        last = now;
        rows.push(row);
        console.log(`| ${row.name} | ${r.rows}x${r.cols} | ${row.seconds.toFixed(2)} | ${row.wall.toFixed(2)} | ${m.rss.toFixed(0)} | ${m.heap.toFixed(0)} | ${m.external.toFixed(0)} | ${row.wasm.toFixed(0)} | ${m.maxRss.toFixed(0)} |`);
        if (done >= blocks * perBlock) throw new Enough();
      },
    });
  } catch (e) {
    if (!(e instanceof Enough)) throw e;
  }
  const total = (performance.now() - t0) / 1000;
  const q = rows.reduce((s, r) => s + r.seconds, 0);
  const end = mem();
  console.log(`total: ${rows.length} layers in ${total.toFixed(1)} s (${q.toFixed(1)} s quantizing, ${(total - q).toFixed(1)} s calibration passes); ` +
    `peak RSS ${end.maxRss.toFixed(0)} MiB (after load ${mLoaded.rss.toFixed(0)} MiB: +${(end.maxRss - mLoaded.rss).toFixed(0)} MiB), WASM memory ${wasmMiB().toFixed(0)} MiB`);
  results[method] = { model: model.name, loadSeconds: loadS, afterLoad: mLoaded, layers: rows, totalSeconds: total, quantizeSeconds: q, end };
  model.free();
}
// tmp + rename, and a run killed while writing leaves a temp the next run removes (runtime README)
if (jsonOut) await writeTextAtomic(jsonOut, `${JSON.stringify({ date: new Date().toISOString(), windows, ctx, blocks, results }, null, 2)}\n`);
