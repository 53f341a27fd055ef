// The demo's worker: the runtime's worker API (load, perplexity, generate, ... through comlink) with
// the demo's own methods served beside it on the same model: open a file, inspect it, quantize,
// save. Every heavy step runs here, never on the page's thread.
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type ModelQuantizeOptions, allocate, allocationRange, applyAllocation, measureClado, quantizeModel } from '@lowbit/quantizers';
import {
  LowbitError,
  type RuntimeApi,
  bitsPerWeight,
  bytesSource,
  Session,
  exposeRuntime,
  perplexity,
  rng,
  sample,
  saveModelSafetensors,
  readGguf,
  readSafetensors,
  runtimeModel,
  saveModel,
  tokenizeDocuments,
  transferBytes,
} from '@lowbit/runtime';
import { f32Weights } from '@lowbit/quantizers';
import { modelWorkload, simulateWorkload } from '@lowbit/sim';
import { gemvBench } from './bench.js';
import type { AllocateReport, DemoMethods, FormatsMethods, GenerateStop, KernelsMethods, ModelSummary, QuantizeReport, Stage, TensorRow } from './api.js';
import { errorStats, studyFormat } from './formats-study.js';
import { GGML_FORMATS, MX_FORMATS, allocationLabel, settingsLabel } from './api.js';
import { writeToMemory } from './memory-files.js';

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_FILE_BYTES = 2 ** 31; // one ArrayBuffer, and what a tab can hold twice (original + quantized)

async function fetchBytes(url: URL): Promise<Uint8Array> {
  const r = await fetch(url).catch((e: Error) => {
    throw new LowbitError('E_IO', `${url.href}: cannot fetch (${e.message})`);
  });
  if (!r.ok) throw new LowbitError('E_IO', `${url.href}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const texts = new Map<string, Promise<string>>();
function embeddedText(url: URL): Promise<string> {
  let t = texts.get(url.href);
  if (!t) {
    t = fetchBytes(url).then((b) => new TextDecoder().decode(b));
    texts.set(url.href, t);
  }
  return t;
}

function shortValue(v: unknown): string {
  const s = typeof v === 'bigint' ? v.toString() : typeof v === 'number' ? String(v) : String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

async function inspectGguf(bytes: Uint8Array, name: string): Promise<Omit<ModelSummary, 'runnable' | 'fileBytes'>> {
  const file = await readGguf(bytesSource(bytes, name));
  const tensors: TensorRow[] = [...file.tensors.values()].map((t) => ({
    name: t.name, type: t.type, shape: t.shape, bytes: t.byteLength, bitsPerWeight: bitsPerWeight(t.type, t.shape, t.byteLength),
  }));
  // arrays (vocabulary, merges) are the tokenizer's: their length says enough
  const metadata: [string, string][] = [...file.metadata].map(([k, v]) => [k, v.type === 9 ? `[${v.value.length} items]` : shortValue(v.value)]);
  return { name, container: 'gguf', metadata, tensors, ...totals(tensors) };
}

async function inspectSafetensors(bytes: Uint8Array, name: string): Promise<Omit<ModelSummary, 'runnable' | 'fileBytes'>> {
  const file = await readSafetensors(bytesSource(bytes, name));
  const tensors: TensorRow[] = [...file.tensors.values()].map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    return { name: t.name, type: t.dtype, shape: t.shape, bytes: t.byteLength, bitsPerWeight: n ? (t.byteLength * 8) / n : 0 };
  });
  const metadata: [string, string][] = Object.entries(file.metadata ?? {}).map(([k, v]) => [k, shortValue(v)]);
  return { name, container: 'safetensors', metadata, tensors, ...totals(tensors) };
}

function totals(tensors: TensorRow[]): { params: number; bitsPerWeight: number } {
  let params = 0;
  let bytes = 0;
  for (const t of tensors) {
    params += t.shape.reduce((a, b) => a * b, 1);
    bytes += t.bytes;
  }
  return { params, bitsPerWeight: params ? (bytes * 8) / params : 0 };
}

function demoMethods(api: RuntimeApi): DemoMethods & FormatsMethods & KernelsMethods {
  // the opened file's bytes, kept so every quantization starts from the original weights
  let original: { bytes: Uint8Array; name: string } | undefined;
  // what saveModel / saveModelSafetensors need to write the quantized model as `lowbit quantize --out` does
  let quantized: { label: string; ggml: boolean; packed: NonNullable<Parameters<typeof saveModel>[2]>['packed'] } | undefined;
  let stopRequested = false;
  const beforeCache = new Map<string, { perplexity: number; stderr: number; tokens: number }>();

  async function open(bytes: Uint8Array, name: string): Promise<ModelSummary> {
    if (bytes.length < 8) throw new LowbitError('E_TRUNCATED', `${name}: ${bytes.length} bytes, too short for a GGUF or safetensors header`);
    const magic = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0, true);
    const isGguf = magic === GGUF_MAGIC;
    if (!isGguf && !/\.safetensors$/i.test(name)) {
      throw new LowbitError('E_FORMAT', `${name}: neither GGUF (no "GGUF" magic in the first 4 bytes) nor a .safetensors file; the demo opens those two`);
    }
    const info = isGguf ? await inspectGguf(bytes, name) : await inspectSafetensors(bytes, name);
    if (!isGguf) {
      return {
        ...info, fileBytes: bytes.length, runnable: false,
        why: 'a lone .safetensors file holds weights without config.json and the tokenizer: inspected, not run (convert it to GGUF, or use `lowbit` on the Hugging Face folder)',
      };
    }
    // the loader keeps what it needs; the worker keeps its own copy of the file for re-quantizing
    await api.load(bytes.slice(), { name });
    original = { bytes, name };
    quantized = undefined;
    beforeCache.clear();
    const m = runtimeModel(api);
    const c = m.config;
    return {
      ...info, fileBytes: bytes.length, runnable: true, kernels: String(api.info().kernels),
      config: { architecture: c.architecture, dim: c.dim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hiddenDim: c.hiddenDim, vocabSize: c.vocabSize, contextLength: c.contextLength },
    };
  }

  return {
    async openEmbedded() {
      return open(await fetchBytes(defaultModelUrl), 'stories260K.gguf');
    },
    async openFile(file, name) {
      if (file.size > MAX_FILE_BYTES) throw new LowbitError('E_RANGE', `${name}: ${file.size} bytes, more than the ${MAX_FILE_BYTES} this demo holds in a tab`);
      return open(new Uint8Array(await file.arrayBuffer()), name);
    },
    async validationInfo() {
      const ids = tokenizeDocuments(runtimeModel(api), await embeddedText(validTextUrl));
      const ctx = 256;
      return { chars: (await embeddedText(validTextUrl)).length, tokens: ids.length, windows: Math.ceil(ids.length / ctx) - (ids.length % ctx === 1 ? 1 : 0) };
    },
    async quantize(s, onProgress) {
      if (!original) throw new LowbitError('E_MISSING', 'no runnable model opened: open a GGUF first');
      const t0 = performance.now();
      const progress = (stage: Stage, done: number, total: number) => void onProgress?.(stage, done, total);
      progress('load', 0, 1);
      // each run starts from the file's weights, not the previous run's
      await api.load(original.bytes.slice(), { name: original.name });
      quantized = undefined;
      const model = runtimeModel(api);
      const valid = await embeddedText(validTextUrl);
      const evalOptions = { ctx: s.ctx, maxWindows: s.evalWindows };
      const key = `${s.ctx}/${s.evalWindows}`;
      let before = beforeCache.get(key);
      if (!before) {
        const r = perplexity(model, valid, { ...evalOptions, onProgress: (d, t) => progress('eval original', d, t) });
        before = { perplexity: r.perplexity, stderr: r.stderr, tokens: r.tokens };
        beforeCache.set(key, before);
      }
      const ggml = (GGML_FORMATS as readonly string[]).includes(s.format);
      const mx = (MX_FORMATS as readonly string[]).includes(s.format);
      const needsCalibration = s.method === 'gptq' || s.smooth !== undefined || s.adaDim === true || s.clipSearch === true;
      const calibration = needsCalibration ? (s.calibration ?? (await embeddedText(calibrationTextUrl))) : undefined;
      // the same option set `lowbit quantize` builds (its includeOutput: the LM head too for ggml blocks)
      const common = {
        method: s.method, actOrder: s.actOrder, staticGroups: s.staticGroups, calibration, ctx: s.ctx, maxWindows: s.calibWindows, smooth: s.smooth,
        includeOutput: ggml, onLayer: (_l: unknown, d: number, t: number) => progress('quantize', d, t),
      };
      const o: ModelQuantizeOptions = ggml || mx
        ? { ...common, format: s.format as 'q4_0' }
        : { ...common, format: 'int', bits: s.bits, group: s.group, symmetric: s.symmetric, adaDim: s.adaDim, clipSearch: s.clipSearch };
      const r = quantizeModel(model, o);
      const after = perplexity(model, valid, { ...evalOptions, onProgress: (d, t) => progress('eval quantized', d, t) });
      // as `lowbit quantize --out` saves: ggml layers as their blocks, INT-k / MX as lowbit tensor types
      quantized = { label: settingsLabel(s), ggml, packed: ggml ? undefined : r.packed };
      const report: QuantizeReport = {
        settings: s, label: settingsLabel(s),
        pplBefore: before.perplexity, stderrBefore: before.stderr, pplAfter: after.perplexity, stderrAfter: after.stderr, tokens: after.tokens,
        bitsPerWeight: r.bitsPerWeight, layers: r.layers.length, secondsQuantize: r.seconds, secondsTotal: (performance.now() - t0) / 1000,
      };
      return report;
    },
    gemvBench,
    async linearNames() {
      return runtimeModel(api).linears().map((l) => l.name);
    },
    async formatStudy(format, tensor) {
      const lin = runtimeModel(api).linear(tensor);
      const w = f32Weights(tensor, lin.source).data;
      const { dequantized, ...study } = studyFormat(format, tensor, w, lin.rows, lin.cols);
      return { ...study, ...errorStats(w, dequantized) };
    },
    async saveSafetensors() {
      if (!quantized) throw new LowbitError('E_MISSING', 'nothing quantized yet: run a quantization first');
      if (quantized.ggml) throw new LowbitError('E_UNSUPPORTED', `${quantized.label}: llama.cpp blocks have no safetensors layout; download the GGUF`);
      const packed = quantized.packed;
      const bytes = await writeToMemory('model.safetensors', (path) => saveModelSafetensors(runtimeModel(api), path, { packed }));
      return transferBytes(bytes);
    },
    async allocate(s, onProgress) {
      if (!original) throw new LowbitError('E_MISSING', 'no runnable model opened: open a GGUF first');
      const progress = (stage: Stage, done: number, total: number) => void onProgress?.(stage, done, total);
      progress('load', 0, 1);
      await api.load(original.bytes.slice(), { name: original.name });
      quantized = undefined;
      const model = runtimeModel(api);
      const valid = await embeddedText(validTextUrl);
      const key = `${s.ctx}/${s.evalWindows}`;
      let before = beforeCache.get(key);
      if (!before) {
        const r = perplexity(model, valid, { ctx: s.ctx, maxWindows: s.evalWindows, onProgress: (d, t) => progress('eval original', d, t) });
        before = { perplexity: r.perplexity, stderr: r.stderr, tokens: r.tokens };
        beforeCache.set(key, before);
      }
      const t0 = performance.now();
      const m = measureClado(model, {
        ...(s.ggml.length ? { ggml: s.ggml } : { bits: s.bits }), group: 32, symmetric: true, method: 'rtn', calibration: await embeddedText(calibrationTextUrl),
        ctx: 128, maxWindows: s.calibWindows, pairs: s.pairs, onProgress: (d, t) => progress('measure', d, t),
      });
      const t1 = performance.now();
      progress('solve', 0, 1);
      const a = await allocate(m, { method: s.method, budgetBits: s.budgetBits });
      const t2 = performance.now();
      const packed = applyAllocation(model, m, a.choice);
      const after = perplexity(model, valid, { ctx: s.ctx, maxWindows: s.evalWindows, onProgress: (d, t) => progress('eval quantized', d, t) });
      const label = allocationLabel(s);
      // ggml candidates are blocks in the model (packed is empty), which saveModel writes as they are
      quantized = { label, ggml: s.ggml.length > 0, packed };
      const range = allocationRange(m);
      const report: AllocateReport = {
        settings: s, label, pplBefore: before.perplexity, pplAfter: after.perplexity, stderrAfter: after.stderr, tokens: after.tokens,
        bitsPerWeight: a.bitsPerWeight, minBits: range.minBits, maxBits: range.maxBits, predictedDeltaLoss: a.predictedDeltaLoss,
        layers: m.layers.map((name, l) => ({ name, format: a.formats[name], weights: m.counts[l] })),
        solver: a.solver ? a.solver.status : null, evaluations: m.evaluations,
        secondsMeasure: (t1 - t0) / 1000, secondsSolve: (t2 - t1) / 1000,
      };
      return report;
    },
    // The runtime's generate runs its loop without returning to the event loop, so a worker running it
    // takes no message until it ends. The same loop here (Session, sample, rng: the same tokens, as the
    // e2e test checks) yields every ~30 ms, when a stopGenerate call can arrive.
    async generateStream(prompt, o, onToken) {
      stopRequested = false;
      const model = runtimeModel(api);
      const ids = model.tokenizer.encode(prompt, { bos: true });
      if (ids.length >= model.config.contextLength) {
        throw new LowbitError('E_RANGE', `generate: the prompt is ${ids.length} tokens, the model's context ${model.config.contextLength} leaves no room to generate`);
      }
      const session = new Session(model, { ctx: Math.min(model.config.contextLength, ids.length + o.steps) });
      const rand = rng(o.seed);
      const decoder = new TextDecoder();
      let made = 0;
      let stopReason: GenerateStop = 'steps';
      let last: Promise<unknown> = Promise.resolve();
      let t1 = performance.now();
      let lastYield = t1;
      try {
        let logits = session.forward(ids);
        t1 = performance.now();
        let prev = ids[ids.length - 1];
        for (let i = 0; i < o.steps; i++) {
          if (performance.now() - lastYield > 30) {
            await new Promise((r) => setTimeout(r, 0));
            lastYield = performance.now();
          }
          if (stopRequested) {
            stopReason = 'cancelled';
            break;
          }
          const next = sample(logits, o.temperature, 0, rand);
          if (next === model.tokenizer.eos) {
            stopReason = 'eos';
            break;
          }
          made++;
          // one MessagePort keeps the pieces in order; the last one is awaited before returning
          last = Promise.resolve(onToken(decoder.decode(model.tokenizer.pieceBytes(next, prev), { stream: true })));
          prev = next;
          if (i + 1 === o.steps) break;
          if (session.pos >= session.ctx) {
            stopReason = 'context';
            break;
          }
          logits = session.forward([next]);
        }
      } finally {
        session.free();
      }
      const tail = decoder.decode();
      if (tail) last = Promise.resolve(onToken(tail));
      const decodeSeconds = (performance.now() - t1) / 1000;
      await last;
      return { tokens: made, decodeSeconds, stopReason };
    },
    async stopGenerate() {
      stopRequested = true;
    },
    // Runs on the model this worker holds: the page opens the quantized model's GGUF in a worker of
    // its own, so the file's integer codes (not the fake-quantized f32 the quantizer holds) are simulated
    // and a cancel stops only that worker.
    async simulate(accel, seq, modelLabel, onProgress) {
      const t0 = performance.now();
      const model = runtimeModel(api);
      onProgress?.('capture', 0, 1);
      const w = modelWorkload(model, await embeddedText(calibrationTextUrl), { seq });
      const r = simulateWorkload(w, accel, { onLayer: (d, t) => onProgress?.('simulate', d, t) });
      return {
        accel: r.accel, modelLabel, seq: w.seq, speedup: r.speedup, mac_utilisation: r.mac_utilisation, profile: r.profile,
        layers: r.layers.map((l) => ({ name: l.name, act_bits: l.act_bits, wgt_bits: l.wgt_bits, speedup: l.speedup, mac_utilisation: l.mac_utilisation })),
        seconds: (performance.now() - t0) / 1000,
      };
    },
    async saveGguf() {
      if (!quantized) throw new LowbitError('E_MISSING', 'nothing quantized yet: run a quantization first');
      const chunks: Uint8Array[] = [];
      // chunks can be views of the model's WebAssembly memory: copy each as it comes
      await saveModel(runtimeModel(api), { write: async (b: Uint8Array) => chunks.push(b.slice()) }, { target: 'F32', packed: quantized.packed });
      const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return transferBytes(out);
    },
  };
}

exposeRuntime(undefined, demoMethods);
