// The readers under fuzz, their seed files (made here with the project's own writers from the
// embedded model) and how an input is mutated and run. A reader's run either returns (the input is a
// valid model / tensor / tokenizer, which then has to pass its own use: a forward pass, a
// dequantization, an encode/decode) or throws; the harness classifies what it throws.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import {
  deserializeTensor, dequantizeBcq, dequantizeCodebook, dequantizeInt, dequantizeMx, dequantizeNf4, quantizeAnyPrecision, quantizeBcq, quantizeCodebook,
  quantizeInt, quantizeMx, quantizeNf4, readAnyPrecision, serializeTensor,
} from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import {
  ByteLevelBpeTokenizer, GPT2_PATTERN, Session, byteLevelTokenizerJson, bytesSource, encodeGgufHeader, exportHfModel, formatNpy, isSpmTokenizerJson,
  loadHfModel, loadModel, loadQuantizedSafetensors, metaValue, npyMatrix, parseNpy, readGguf, readSafetensors, readSafetensorsF32, readTensorBytes,
  saveModel, saveModelSafetensors, spmTokenizerFromJson, fromF32, writeGguf,
} from '@lowbit/runtime';
import { randomLlamaMetadata, randomLlamaTensors } from '../random-llama.mjs';
import { concat, mutateBytes, mutateJson } from './mutate.mjs';

// ---------------------------------------------------------------------------------------------
// Seeds

/** GPT-2's byte → printable-character map (bytes_to_unicode), for the toy byte-level vocabulary. */
function byteChars() {
  const keep = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const map = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return map;
}

/** A small byte-level BPE tokenizer: the 256 byte pieces plus merges learned greedily on a sentence. */
function toyByteLevel() {
  const chars = byteChars();
  const text = 'Once upon a time, there was a little dog named Max. He liked to run in the park with the other dogs. The end.';
  const words = text.match(/ ?\w+|[^\w\s]+|\s+/g).map((w) => [...new TextEncoder().encode(w)].map((b) => chars[b]));
  const vocab = new Map(chars.map((c, i) => [c, i]));
  const merges = [];
  for (let round = 0; round < 40; round++) {
    const counts = new Map();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]} ${w[i + 1]}`, (counts.get(`${w[i]} ${w[i + 1]}`) ?? 0) + 1);
    const best = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!best || best[1] < 2) break;
    const [a, b] = best[0].split(' ');
    merges.push([a, b]);
    vocab.set(a + b, vocab.size);
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
  }
  vocab.set('<|endoftext|>', vocab.size);
  return new ByteLevelBpeTokenizer(vocab, merges, GPT2_PATTERN, vocab.size - 1, vocab.size - 1, [vocab.size - 1]);
}

function mxRows(w, rows, cols) {
  const nb = Math.ceil(cols / 32);
  const scales = new Uint8Array(rows * nb);
  const codes = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const t = quantizeMx(w.subarray(r * cols, (r + 1) * cols), { format: 'mxfp4' });
    scales.set(t.scales, r * nb);
    codes.set(t.codes, r * cols);
  }
  return { kind: 'mx-rows', format: 'mxfp4', shape: [rows, cols], scales, codes };
}

/** Writes every seed file under `dir` (with the project's writers) and returns the manifest. */
/**
 * A small random Llama whose rows are whole 256-blocks, its matrices in every K type ggml's writers
 * give (Q2_K … Q6_K in turn): the K-quant readers, the load-time tiling and the K-quant kernels'
 * share of the GGUF readers (the embedded model's 64-wide rows take no K type).
 */
async function writeKQuantSeed(path) {
  const cfg = { dim: 256, layers: 2, ffn: 512, heads: 4, kvHeads: 2, vocab: 300, ctx: 64 };
  const types = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];
  let n = 0;
  let s = 7;
  const mat = (name, rows, cols) => {
    const type = types[n++ % types.length];
    const w = Float32Array.from({ length: rows * cols }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) / 8);
    return { name, shape: [cols, rows], type, data: () => fromF32(type, w, cols) };
  };
  const vec = (name) => ({ name, shape: [cfg.dim], type: 'F32', data: () => fromF32('F32', new Float32Array(cfg.dim).fill(1), cfg.dim) });
  await writeGguf(path, randomLlamaMetadata(cfg, 'lowbit fuzz seed: K-quants'), randomLlamaTensors(cfg, mat, vec));
}

export async function makeSeeds(dir) {
  mkdirSync(dir, { recursive: true });
  const gguf = fileURLToPath(defaultModelUrl);
  const model = await loadModel(gguf);
  const int4 = new Map();
  const mx = new Map();
  for (const l of model.linears().filter((x) => x.name.startsWith('blk.'))) {
    const w = l.source.data;
    int4.set(l.name, quantizeInt(w, [l.rows, l.cols], { bits: 4, granularity: 'group-cols', group: 32, symmetric: true }));
    mx.set(l.name, mxRows(w, l.rows, l.cols));
  }
  const half = new Map([...int4].map(([n, t], i) => [n, i % 2 ? t : mx.get(n)]));
  await saveModel(model, join(dir, 'lowbit-types.gguf'), { packed: half });
  await saveModelSafetensors(model, join(dir, 'f32.safetensors'));
  await saveModelSafetensors(model, join(dir, 'gptq-int4.safetensors'), { packed: int4 });
  await saveModelSafetensors(model, join(dir, 'mx.safetensors'), { packed: mx });
  model.free();
  await exportHfModel(gguf, join(dir, 'hf'));
  const gptqDir = join(dir, 'hf-gptq');
  mkdirSync(gptqDir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(dir, 'hf', 'config.json'), 'utf8'));
  cfg.quantization_config = { quant_method: 'gptq', bits: 4, group_size: 32, desc_act: false, sym: true };
  writeFileSync(join(gptqDir, 'config.json'), JSON.stringify(cfg, null, 2));
  copyFileSync(join(dir, 'gptq-int4.safetensors'), join(gptqDir, 'model.safetensors'));
  copyFileSync(join(dir, 'hf', 'tokenizer.json'), join(gptqDir, 'tokenizer.json'));
  await writeKQuantSeed(join(dir, 'kquants.gguf'));
  writeFileSync(join(dir, 'tokenizer-bpe.json'), JSON.stringify(byteLevelTokenizerJson(toyByteLevel())));
  copyFileSync(join(dir, 'hf', 'tokenizer.json'), join(dir, 'tokenizer-spm.json'));
  // LBPT blobs of every packed kind
  const w = Float32Array.from({ length: 6 * 80 }, (_, i) => Math.sin(i * 0.37) * 0.4);
  const s = [6, 80];
  const gIdx = Int32Array.from({ length: 80 }, (_, c) => (c * 7) % 5 === 0 ? Math.floor(c / 16) : Math.floor(c / 16));
  const lbpt = {
    'int3-rows': quantizeInt(w, s, { bits: 3, granularity: 'group-rows', group: 2, symmetric: false }),
    'int4-gidx': { ...quantizeInt(w, s, { bits: 4, granularity: 'group-cols', group: 16, symmetric: true }), gIdx },
    mx: quantizeMx(w, { format: 'mxfp6_e2m3' }),
    nf4: quantizeNf4(w, s, { group: 32 }),
    codebook: quantizeCodebook(w, s, { bits: 3 }),
    bcq: quantizeBcq(w, s, { bits: 2, group: 16 }),
    'any-precision': quantizeAnyPrecision(w, s, { maxBits: 4 }),
  };
  for (const [n, t] of Object.entries(lbpt)) writeFileSync(join(dir, `${n}.lbpt`), serializeTensor(t));
  const npy = {
    'f32-2d': formatNpy(Float32Array.from({ length: 15 }, (_, i) => i / 3), [3, 5]),
    'f16-1d': formatNpy(Uint16Array.from({ length: 9 }, (_, i) => 0x3c00 + i), [9], '<f2'),
    'i8-3d': formatNpy(Int8Array.from({ length: 24 }, (_, i) => i - 12), [2, 3, 4]),
    'i32-2d': formatNpy(Int32Array.from({ length: 8 }, (_, i) => i * 1000), [4, 2]),
  };
  for (const [n, b] of Object.entries(npy)) writeFileSync(join(dir, `${n}.npy`), b);
  return {
    'gguf-header': [gguf, join(dir, 'lowbit-types.gguf'), join(dir, 'kquants.gguf')],
    'gguf-model': [gguf, join(dir, 'lowbit-types.gguf'), join(dir, 'kquants.gguf')],
    safetensors: ['f32.safetensors', 'gptq-int4.safetensors', 'mx.safetensors', 'hf/model.safetensors'].map((f) => join(dir, f)),
    'quantized-safetensors': ['f32.safetensors', 'gptq-int4.safetensors', 'mx.safetensors'].map((f) => join(dir, f)),
    'hf-dir': [join(dir, 'hf'), gptqDir],
    lbpt: Object.keys(lbpt).map((n) => join(dir, `${n}.lbpt`)),
    'tokenizer-spm-json': [join(dir, 'tokenizer-spm.json')],
    'tokenizer-bpe-json': [join(dir, 'tokenizer-bpe.json')],
    npy: Object.keys(npy).map((n) => join(dir, `${n}.npy`)),
  };
}

// ---------------------------------------------------------------------------------------------
// Structure-aware mutators

const enc = new TextEncoder();
const dec = new TextDecoder();

/** [header text, data] of a container whose JSON header length is a `width`-byte LE integer at `at`. */
function split(b, at, width) {
  if (b.length < at + width) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = width === 8 ? Number(v.getBigUint64(at, true)) : v.getUint32(at, true);
  if (at + width + n > b.length) return null;
  return [dec.decode(b.subarray(at + width, at + width + n)), b.subarray(at + width + n), b.subarray(0, at)];
}

function joinHeaded(prefix, width, text, data) {
  const t = enc.encode(text);
  const len = new Uint8Array(width);
  const v = new DataView(len.buffer);
  if (width === 8) v.setBigUint64(0, BigInt(t.length), true);
  else v.setUint32(0, t.length, true);
  return concat(prefix, len, t, data);
}

/** A JSON-headed container: mutate the header (or a JSON string nested in its __metadata__), keep the data. */
function mutateHeaded(b, r, at, width) {
  const parts = split(b, at, width);
  if (!parts || r.chance(0.3)) return mutateBytes(b, r);
  let [text, data, prefix] = parts;
  if (r.chance(0.4)) {
    // the JSON inside __metadata__ strings (lowbit.gguf_metadata, quantize_config, lowbit.tensors)
    try {
      const h = JSON.parse(text);
      const meta = h.__metadata__;
      const keys = meta && typeof meta === 'object' ? Object.keys(meta).filter((k) => /^[[{]/.test(meta[k])) : [];
      if (keys.length) {
        const k = r.pick(keys);
        meta[k] = mutateJson(meta[k], r);
        text = JSON.stringify(h);
      } else text = mutateJson(text, r);
    } catch {
      text = mutateJson(text, r);
    }
  } else text = mutateJson(text, r);
  if (width === 8) text += ' '.repeat((8 - ((8 + enc.encode(text).length) % 8)) % 8);
  let out = joinHeaded(prefix, width, text, data);
  if (r.chance(0.15)) out = mutateBytes(out, r);
  return out;
}

const GGUF_KEYS = [
  'general.architecture', 'general.alignment', 'llama.block_count', 'llama.embedding_length', 'llama.feed_forward_length', 'llama.attention.head_count',
  'llama.attention.head_count_kv', 'llama.rope.dimension_count', 'llama.rope.freq_base', 'llama.context_length', 'llama.attention.layer_norm_rms_epsilon',
  'llama.vocab_size', 'tokenizer.ggml.model', 'tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges',
  'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id', 'tokenizer.ggml.pre', 'tokenizer.ggml.add_space_prefix',
];

function ggufValue(r, old) {
  switch (r.int(14)) {
    case 0: return { type: 4, value: r.pick([0, 1, 2, 3, 7, 2 ** 22, 2 ** 31, 2 ** 32 - 1, 1e9]) };
    case 1: return { type: 5, value: r.pick([-1, -(2 ** 31), 0]) };
    case 2: return { type: 6, value: r.pick([Number.NaN, Number.POSITIVE_INFINITY, -1, 1e30, 0.5, 0]) };
    case 3: return { type: 8, value: r.pick(['', 'x', 'gpt2', 'llama', 'qwen2', 'constructor', '__proto__', 'toString', 'llama3']) };
    case 4: return { type: 10, value: r.pick([0n, 2n ** 63n, 2n ** 64n - 1n, 5n]) };
    case 5: return { type: 11, value: r.pick([-1n, 5n]) };
    case 6: return { type: 9, itemType: 4, value: Array.from({ length: r.pick([0, 1, 3, 512]) }, (_, i) => i) };
    case 7: return { type: 9, itemType: 8, value: r.pick([[], ['a'], ['a b', 'c d'], ['__proto__', 'constructor']]) };
    case 8: return { type: 7, value: r.chance(0.5) };
    case 9: return { type: 12, value: r.pick([Number.NaN, 1e300, -0]) };
    default:
      if (old?.type === 9 && old.value.length) {
        const v = old.value.slice();
        switch (r.int(4)) {
          case 0: v.length = r.int(v.length); break;
          case 1: v.push(v[r.int(v.length)]); break;
          case 2: v[r.int(v.length)] = old.itemType === 8 ? r.pick(['', ' ', 'a b c', '<0xZZ>']) : r.pick([-1, 1e9, Number.NaN]); break;
          default: return { type: 9, itemType: 4, value: v.map((_, i) => i) };
        }
        return { ...old, value: v };
      }
      return { type: 4, value: r.pick([0, 1, 8, 64]) };
  }
}

/** The parsed seed GGUF (metadata + tensor bytes), cached per child. */
const parsedGguf = new Map();
async function parseGgufSeed(path, bytes) {
  if (!parsedGguf.has(path)) {
    const g = await readGguf(bytesSource(bytes, path));
    const tensors = [];
    for (const t of g.tensors.values()) tensors.push({ name: t.name, shape: t.shape, type: t.type, params: t.params, data: await readTensorBytes(g, t.name) });
    parsedGguf.set(path, { metadata: g.metadata, tensors });
  }
  return parsedGguf.get(path);
}

async function mutateGguf(path, b, r) {
  if (r.chance(0.4)) return mutateBytes(b, r, 8192);
  const seed = await parseGgufSeed(path, b);
  const metadata = new Map(seed.metadata);
  const tensors = seed.tensors.map((t) => ({ ...t }));
  const rounds = 1 + r.int(2);
  for (let k = 0; k < rounds; k++) {
    switch (r.int(8)) {
      case 0: case 1: case 2: {
        const key = r.chance(0.7) ? r.pick(GGUF_KEYS) : r.pick([...metadata.keys()]);
        metadata.set(key, ggufValue(r, metadata.get(key)));
        break;
      }
      case 3:
        metadata.delete(r.pick([...metadata.keys()]));
        break;
      case 4: { // a tensor's shape
        const t = r.pick(tensors);
        const s = t.shape.slice();
        const d = r.int(s.length);
        s[d] = r.pick([0, 1, s[d] * 2, Math.max(1, s[d] >> 1), 2 ** 31, s[d] + 1]);
        if (r.chance(0.2)) s.reverse();
        t.shape = s;
        break;
      }
      case 5: { // drop, rename or duplicate a tensor
        const i = r.int(tensors.length);
        const op = r.int(3);
        if (op === 0) tensors.splice(i, 1);
        else if (op === 1) tensors[i] = { ...tensors[i], name: r.pick(['blk.99.attn_q.weight', 'x', tensors[(i + 1) % tensors.length].name, 'blk.0.attn_qkv.weight']) };
        else tensors.push({ ...tensors[i] });
        break;
      }
      case 6: { // non-finite or huge values in an F32 tensor
        const f = tensors.filter((t) => t.type === 'F32');
        if (!f.length) break;
        const t = r.pick(f);
        const data = t.data.slice();
        new DataView(data.buffer).setFloat32(4 * r.int(data.length / 4), r.pick([Number.NaN, Number.POSITIVE_INFINITY, -Number.POSITIVE_INFINITY, 3e38, 1e20]), true);
        t.data = data;
        break;
      }
      default: { // a lowbit tensor's parameters
        const lb = [...metadata.keys()].filter((x) => x.startsWith('lowbit.tensor.'));
        if (!lb.length) break;
        const key = r.pick(lb);
        metadata.set(key, { type: 8, value: mutateJson(String(metadata.get(key).value), r) });
      }
    }
  }
  let header;
  try {
    header = encodeGgufHeader(metadata, tensors);
  } catch {
    return mutateBytes(b, r, 8192); // the writer refused the edit: fall back to bytes
  }
  const al = header.alignment; // the writer refuses any but multiples of 8 up to 64 KiB
  const pad = (n) => Math.ceil(n / al) * al;
  const parts = [header.header];
  for (const t of tensors) {
    parts.push(t.data);
    parts.push(new Uint8Array(pad(t.data.length) - t.data.length));
  }
  return concat(...parts);
}

function mutateText(b, r) {
  if (r.chance(0.85)) return enc.encode(mutateJson(dec.decode(b), r));
  return mutateBytes(b, r);
}

// ---------------------------------------------------------------------------------------------
// Readers

const SAMPLE = 'Once upon a time, there was a little dog named Max. He liked to run.\n  Über-ñandú 東京 🙂 1234567 <|endoftext|> \u0000 \ud800';

/** What a loaded model must do: tokenize, embed and run a forward pass of a few tokens. */
function useModel(m) {
  const c = m.config;
  const ids = m.tokenizer.encode(SAMPLE.slice(0, 40), { bos: true }).slice(0, 4);
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`tokenizer gave id ${id} outside the vocabulary (${c.vocabSize})`);
  if (!ids.length) return;
  new Session(m, { ctx: Math.min(8, c.contextLength) }).forward(ids);
  m.tokenizer.decode(ids);
}

function useTokenizer(t) {
  for (const text of [SAMPLE, 'a'.repeat(2000), ' x'.repeat(500)]) {
    const ids = t.encode(text, { bos: true });
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= t.vocabSize) throw new Error(`encode gave id ${id} outside the vocabulary (${t.vocabSize})`);
    t.decode(ids);
  }
}

/** The path hf-model.ts takes for tokenizer.json: JSON text → SentencePiece or byte-level BPE. */
function tokenizerFromText(text) {
  let j;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', `fuzz tokenizer.json: not JSON (${e.message})`);
  }
  return isSpmTokenizerJson(j) ? spmTokenizerFromJson(j, {}, 'fuzz tokenizer.json') : ByteLevelBpeTokenizer.fromJson(j, {}, 'fuzz tokenizer.json');
}

function useTensor(t) {
  const kind = t.kind ?? 'mx';
  const decode = { int: dequantizeInt, mx: dequantizeMx, nf4: dequantizeNf4, codebook: dequantizeCodebook, bcq: dequantizeBcq, 'any-precision': (x) => readAnyPrecision(x, x.maxBits) }[kind];
  if (!decode) throw new Error(`deserializeTensor accepted kind ${String(kind)}`);
  decode(t);
  const again = serializeTensor(t);
  const back = deserializeTensor(again);
  const twice = serializeTensor(back);
  if (twice.length !== again.length || twice.some((x, i) => x !== again[i])) throw new Error('serialize(deserialize(x)) is not stable');
}

/**
 * name → { mutate(seedPath, seedBytes, rng, ctx) → input, run(input, ctx) }. `ctx` holds the child's
 * scratch directory and its kernels; inputs for directory readers are { file, bytes }.
 */
export const READERS = {
  'gguf-header': {
    mutate: (p, b, r) => mutateGguf(p, b, r),
    async run(b) {
      const g = await readGguf(bytesSource(b, 'fuzz.gguf'));
      for (const k of g.metadata.keys()) metaValue(g, k);
      for (const t of g.tensors.values()) await readTensorBytes(g, t.name);
    },
  },
  'gguf-model': {
    mutate: (p, b, r) => mutateGguf(p, b, r),
    async run(b, ctx) {
      const m = await loadModel(bytesSource(b, 'fuzz.gguf'), { kernels: ctx.kernels });
      try {
        useModel(m);
      } finally {
        m.free();
      }
    },
  },
  safetensors: {
    mutate: (_p, b, r) => mutateHeaded(b, r, 0, 8),
    async run(b) {
      const st = await readSafetensors(bytesSource(b, 'fuzz.safetensors'));
      for (const n of st.tensors.keys()) await readSafetensorsF32(st, n);
    },
  },
  'quantized-safetensors': {
    mutate: (_p, b, r) => mutateHeaded(b, r, 0, 8),
    async run(b, ctx) {
      const path = join(ctx.scratch, 'fuzz.safetensors');
      writeFileSync(path, b);
      const m = await loadQuantizedSafetensors(path, { kernels: ctx.kernels });
      try {
        useModel(m);
      } finally {
        m.free();
      }
    },
  },
  'hf-dir': {
    mutate(p, _b, r) {
      const file = r.pick(['config.json', 'config.json', 'model.safetensors', 'model.safetensors', 'tokenizer.json']);
      const bytes = new Uint8Array(readFileSync(join(p, file)));
      return { dir: p, file, bytes: file.endsWith('.json') ? mutateText(bytes, r) : mutateHeaded(bytes, r, 0, 8) };
    },
    async run(input, ctx) {
      const dir = join(ctx.scratch, 'hf');
      mkdirSync(dir, { recursive: true });
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
        if (f === input.file) writeFileSync(join(dir, f), input.bytes);
        else copyFileSync(join(input.dir, f), join(dir, f));
      }
      const m = await loadHfModel(dir, { kernels: ctx.kernels });
      try {
        useModel(m);
      } finally {
        m.free();
      }
    },
    seedBytes: () => new Uint8Array(0),
  },
  lbpt: {
    mutate: (_p, b, r) => mutateHeaded(b, r, 4, 4),
    async run(b) {
      useTensor(deserializeTensor(b));
    },
  },
  'tokenizer-spm-json': {
    mutate: (_p, b, r) => mutateText(b, r),
    async run(b) {
      useTokenizer(tokenizerFromText(dec.decode(b)));
    },
  },
  'tokenizer-bpe-json': {
    mutate: (_p, b, r) => mutateText(b, r),
    async run(b) {
      useTokenizer(tokenizerFromText(dec.decode(b)));
    },
  },
  npy: {
    mutate: (_p, b, r) => {
      if (r.chance(0.5)) return mutateBytes(b, r, 128);
      // edit the header dict's text: shape, dtype, order
      const [pre, text, data] = (() => {
        const n = b.length >= 10 ? new DataView(b.buffer, b.byteOffset).getUint16(8, true) : 0;
        return [b.subarray(0, 10), dec.decode(b.subarray(10, 10 + n)), b.subarray(10 + n)];
      })();
      const edits = [
        (t) => t.replace(/'shape': \([^)]*\)/, `'shape': (${Array.from({ length: r.int(4) }, () => r.pick(['-1', '0', '3', '1e9', '2**40', '4294967296', 'x', '3.5'])).join(', ')},)`),
        (t) => t.replace(/'descr': '[^']*'/, `'descr': '${r.pick(['<f4', '>f4', '<f8', '|b1', '<c8', '<U4', 'O', "'", '<f2', '<i8'])}'`),
        (t) => t.replace(/'fortran_order': \w+/, `'fortran_order': ${r.pick(['True', 'False', '1', 'None'])}`),
        (t) => t.replace(/[{}]/, ''),
        (t) => `${t.slice(0, r.int(t.length))}`,
      ];
      const t2 = r.pick(edits)(text);
      const tb = enc.encode(t2);
      const head = pre.slice();
      if (head.length >= 10) new DataView(head.buffer).setUint16(8, tb.length, true);
      return concat(head, tb, data);
    },
    async run(b) {
      const a = parseNpy(b, 'fuzz.npy');
      const n = a.shape.reduce((x, y) => x * y, 1);
      if (a.data.length !== n) throw new Error(`parseNpy returned ${a.data.length} values for shape [${a.shape}]`);
      if (a.shape.length === 2) npyMatrix(a, 'fuzz.npy', 'weights');
    },
  },
};

/**
 * Readers that break the property on purpose, one way per input (i mod 5): the harness's own test
 * checks that each is caught. Not run by default.
 */
let held = null;
export const SELF_TEST = {
  'self-test': {
    mutate: (_p, b) => b,
    async run(_b, ctx) {
      const i = ctx.index % 5;
      if (i === 0) return null.x; // a TypeError
      if (i === 1) Object.prototype.fuzzPolluted = 1; // pollution the child must see
      if (i === 2) {
        // over 2 s of CPU (checked every 2^20 steps: the clock itself is a system call)
        let x = 0;
        for (const c0 = process.cpuUsage(); process.cpuUsage(c0).user < 2.2e6;) for (let k = 0; k < 1 << 20; k++) x += k;
        return x;
      }
      if (i === 3) {
        // 64 MB off the V8 heap (the self-test lowers the memory limit to just above the process's own) (ArrayBuffers are not bounded by --max-old-space-size), every page touched
        held = new Uint8Array(64 << 20);
        for (let o = 0; o < held.length; o += 4096) held[o] = 1;
      }
      if (i === 4) for (;;); // a hang: the parent's watchdog
    },
    seedBytes: () => new Uint8Array(1),
  },
};
