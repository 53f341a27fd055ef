// Quantized models as one safetensors file: INT-k in the GPTQ checkpoint layout (qweight / qzeros /
// scales / g_idx, quantize_config in __metadata__), MX and other INT-k in lowbit's layout.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PackedIntTensor, dequantizeInt, quantizeInt, quantizeMx, readBits, rowBytes } from '@lowbit/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { f16ToF32, f32ToF16 } from '../src/half.js';
import { type MxRowsTensor, type StoredLayer, dequantizeMxRows } from '../src/lowbit-tensors.js';
import { loadHfModel } from '../src/hf-model.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { gptqTensors, loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { ropeRowOrder } from '../src/rope-order.js';
import { readSafetensors, readSafetensorsBytes, writeSafetensors } from '../src/safetensors.js';
import { modelFile } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-qst-'));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
// CI installs Debian's python3-numpy; LOWBIT_PYTHON picks another interpreter.
const python = process.env.LOWBIT_PYTHON ?? '/usr/bin/python3';
const numpy = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
const noNumpy = `NumPy cross-check not run: ${python} cannot import numpy (apt-get install python3-numpy, or set LOWBIT_PYTHON)`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** INT-k scales are fp16 values already (formats rounds them before choosing codes): the GPTQ layout's F16 scales keep them exactly. */
function f16Scales(t: PackedIntTensor): PackedIntTensor {
  expect(t.scales.every((s) => f16ToF32(f32ToF16(s)) === s)).toBe(true);
  return t;
}

/** The embedded model with every blk.* layer quantized by `make`, in memory as the f32 decode. */
async function quantized(make: (w: Float32Array, shape: [number, number], name: string) => StoredLayer): Promise<{ model: DecoderModel; packed: Map<string, StoredLayer> }> {
  const model = await loadModel(modelFile);
  const packed = new Map<string, StoredLayer>();
  for (const l of model.linears().filter((x) => x.name.startsWith('blk.'))) {
    const t = make((l.source as { data: Float32Array }).data, [l.rows, l.cols], l.name);
    packed.set(l.name, t);
    model.setLinear(l.name, { format: 'f32', shape: [l.rows, l.cols], data: t.kind === 'mx-rows' ? dequantizeMxRows(t) : dequantizeInt(t) });
  }
  return { model, packed };
}

function maxLogitDiff(a: DecoderModel, b: DecoderModel): number {
  const ids = a.tokenizer.encode('Once upon a time, there was a little dog named Max. He liked to run.', { bos: true });
  const x = new Session(a, { ctx: 64 }).forward(ids, { logits: 'all' });
  const y = new Session(b, { ctx: 64 }).forward(ids, { logits: 'all' });
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

/** An act-order-like column → group map: columns dealt to groups by a fixed shuffle. */
function shuffledGIdx(cols: number, group: number): Int32Array {
  const order = Int32Array.from({ length: cols }, (_, i) => i).sort((a, b) => ((a * 7919) % cols) - ((b * 7919) % cols) || a - b);
  const g = new Int32Array(cols);
  order.forEach((c, q) => (g[c] = Math.floor(q / group)));
  return g;
}

describe('quantized safetensors', () => {
  it('3-bit qweight words are the ones AutoGPTQ\'s pack loop builds (32 codes in 3 words, codes 10 and 21 split across words)', () => {
    const codes = Array.from({ length: 64 }, (_, i) => (i * 5 + 3) % 8);
    const packedCodes = new Uint8Array(24); // the int-k convention: code i at bit 3i of the row
    codes.forEach((u, i) => {
      for (let k = 0; k < 3; k++) if ((u >> k) & 1) packedCodes[(i * 3 + k) >> 3] |= 1 << ((i * 3 + k) & 7);
    });
    const one: PackedIntTensor = { kind: 'int', bits: 3, symmetric: true, shape: [1, 64], granularity: 'per-oc', group: 64, scales: Float32Array.of(1), zeros: null, codes: packedCodes };
    const qw = gptqTensors('p', one, false)[0].data as Int32Array;
    // the loop, per 32 codes v[0..31]: word0 = v0..v9 at 3j, v10 << 30; word1 = v10 >> 2, v11..v20 at 3j+1,
    // v21 << 31; word2 = v21 >> 1, v22..v31 at 3j+2 (uint32 arithmetic)
    const words: number[] = [];
    for (let base = 0; base < 64; base += 32) {
      const v = codes.slice(base, base + 32);
      let w0 = 0;
      let w1 = 0;
      let w2 = 0;
      for (let j = 0; j < 10; j++) w0 |= v[j] << (3 * j);
      w0 |= v[10] << 30;
      w1 |= (v[10] >> 2) & 1;
      for (let j = 0; j < 10; j++) w1 |= v[11 + j] << (3 * j + 1);
      w1 |= v[21] << 31;
      w2 |= (v[21] >> 1) & 3;
      for (let j = 0; j < 10; j++) w2 |= v[22 + j] << (3 * j + 2);
      words.push(w0 | 0, w1 | 0, w2 | 0);
    }
    expect(Array.from(qw)).toEqual(words);
  });

  const cases = [
    { bits: 4, symmetric: true, group: 32, actOrder: false },
    { bits: 3, symmetric: true, group: 32, actOrder: true },
    { bits: 2, symmetric: false, group: 32, actOrder: false },
    { bits: 8, symmetric: false, group: 0, actOrder: false },
  ];
  for (const c of cases) {
    const label = `GPTQ layout int${c.bits} ${c.group ? `g${c.group}` : 'per-channel'} ${c.symmetric ? 'sym' : 'asym'}${c.actOrder ? ' act-order (g_idx)' : ''}`;
    it(`${label}: tensors, quantize_config, the reloaded model's logits; an independent NumPy reader decodes the same weights`, async (ctx) => {
      const { model, packed } = await quantized((w, shape) => {
        const t = f16Scales(quantizeInt(w, shape, { bits: c.bits, symmetric: c.symmetric, granularity: c.group ? 'group-cols' : 'per-oc', group: c.group || undefined }));
        // the scales of a quantizeInt tensor belong to contiguous groups; a shuffled map with the same
        // scales is a different (still valid) tensor, which is all this layout test needs
        return c.actOrder ? { ...t, gIdx: shuffledGIdx(shape[1], c.group) } : t;
      });
      for (const [name, t] of packed) model.setLinear(name, { format: 'f32', shape: t.shape, data: dequantizeInt(t as PackedIntTensor) });
      const out = join(dir, `gptq-${c.bits}-${c.group}-${c.symmetric}-${c.actOrder}.safetensors`);
      await saveModelSafetensors(model, out, { packed });
      const st = await readSafetensors(out);
      const cfg = JSON.parse(st.metadata.quantize_config);
      const zeroAtZero = [...packed.values()].some((t) => (t as PackedIntTensor).zeros?.some((z) => z === 0));
      expect(cfg).toEqual({
        bits: c.bits, group_size: c.group || -1, desc_act: c.actOrder, sym: c.symmetric, static_groups: false, true_sequential: true, damp_percent: 0.01,
        quant_method: 'gptq', checkpoint_format: zeroAtZero ? 'gptq_v2' : 'gptq',
      });
      expect(st.metadata.format).toBe('pt');

      // v_proj of block 0 (no RoPE reordering): decode qweight / qzeros / scales by the layout's definition
      const t = packed.get('blk.0.attn_v.weight') as PackedIntTensor;
      const [out_, in_] = t.shape;
      const p = 'model.layers.0.self_attn.v_proj';
      const qw = new DataView((await readSafetensorsBytes(st, `${p}.qweight`)).buffer);
      const qz = await readSafetensorsBytes(st, `${p}.qzeros`);
      const sc = new DataView((await readSafetensorsBytes(st, `${p}.scales`)).buffer);
      const gi = new DataView((await readSafetensorsBytes(st, `${p}.g_idx`)).buffer);
      expect(st.tensors.get(`${p}.qweight`)?.shape).toEqual([(Math.ceil(in_ / 32) * 32 * c.bits) / 32, out_]);
      const want = dequantizeInt(t);
      const zWords = (Math.ceil(out_ / 32) * 32 * c.bits) / 32;
      for (let o = 0; o < out_; o += 5) {
        for (let i = 0; i < in_; i += 3) {
          // element i of column o: bits [i·b, (i+1)·b) of the little-endian stream of int32 words qweight[:, o]
          let u = 0;
          for (let k = 0; k < c.bits; k++) {
            const bit = i * c.bits + k;
            u |= ((qw.getInt32(4 * (Math.floor(bit / 32) * out_ + o), true) >>> bit % 32) & 1) << k;
          }
          const g = gi.getInt32(4 * i, true);
          const zStored = readBits(qz.subarray(g * zWords * 4), o * c.bits, c.bits);
          const z = cfg.checkpoint_format === 'gptq' ? zStored + 1 : zStored; // v1 stores zero − 1
          const s = f16ToF32(sc.getUint16(2 * (g * out_ + o), true));
          expect(Math.fround(s * (u - z))).toBe(want[o * in_ + i]);
        }
      }
      await st.source.close();

      // an independent NumPy reader (tools/gptq-safetensors-check.py, written from the layout's
      // definition) decodes every layer to exactly the weights lowbit quantized
      if (numpy) {
        const np = join(dir, `np-${c.bits}-${c.group}-${c.symmetric}-${c.actOrder}`);
        const r = spawnSync(python, [join(repoRoot, 'tools/gptq-safetensors-check.py'), out, np], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).layers).toBe(35);
        for (const [name, t] of packed) {
          const hf = name.replace(/^blk\.(\d+)\./, 'model.layers.$1.').replace('attn_q.weight', 'self_attn.q_proj').replace('attn_k.weight', 'self_attn.k_proj')
            .replace('attn_v.weight', 'self_attn.v_proj').replace('attn_output.weight', 'self_attn.o_proj').replace('ffn_gate.weight', 'mlp.gate_proj')
            .replace('ffn_up.weight', 'mlp.up_proj').replace('ffn_down.weight', 'mlp.down_proj');
          const got = new Float32Array(readFileSync(join(np, `${hf}.f32`)).buffer.slice(0));
          const w = dequantizeInt(t as PackedIntTensor);
          const [rows, cols] = t.shape;
          // q/k rows are in HF's RoPE order in the file
          const heads = name.includes('attn_q') ? model.config.nHeads : name.includes('attn_k') ? model.config.nKvHeads : 0;
          const src = heads ? ropeRowOrder(heads, model.config.headDim, 'halves') : Int32Array.from({ length: rows }, (_, i) => i);
          const want = new Float32Array(rows * cols);
          src.forEach((s, r) => want.set(w.subarray(s * cols, (s + 1) * cols), r * cols));
          expect(got).toEqual(want);
        }
      }

      const back = await loadQuantizedSafetensors(out);
      // every quantized layer runs packed (on ggml tiles, the int4 kernel or the table GEMV)
      expect(back.linears().filter((l) => l.name.startsWith('blk.')).every((l) => l.format !== 'f32')).toBe(true);
      // re-read codes equal the saved ones (RoPE rows restored on q/k)
      const q = back.linear('blk.1.attn_q.weight').source;
      if (q.format === 'packed') expect(dequantizeInt(q.tensor as PackedIntTensor)).toEqual(dequantizeInt(packed.get('blk.1.attn_q.weight') as PackedIntTensor));
      // INT-k runs on integer kernels with int8 activations where it repacks exactly (Q4_0/Q8_0
      // tiles, the int4 kernel: packed-fast.ts), so it is compared with the same tensors in memory, which
      // take the same kernels: identical
      for (const [name, t] of packed) model.setLinear(name, linearWeightFromPacked(t));
      expect(maxLogitDiff(model, back)).toBe(0);
      model.free();
      back.free();
      if (!numpy) ctx.skip(noNumpy);
    });
  }

  it('the same file as a Hugging Face GPTQ checkpoint directory (config.json with quantization_config) loads with loadHfModel, packed, with identical logits', async () => {
    const { model, packed } = await quantized((w, shape) => f16Scales(quantizeInt(w, shape, { bits: 4, symmetric: false, granularity: 'group-cols', group: 32 })));
    const hfDir = join(dir, 'hf-gptq');
    mkdirSync(hfDir);
    await saveModelSafetensors(model, join(hfDir, 'model.safetensors'), { packed });
    const st = await readSafetensors(join(hfDir, 'model.safetensors'));
    const q = JSON.parse(st.metadata.quantize_config);
    await st.source.close();
    const c = model.config;
    writeFileSync(join(hfDir, 'config.json'), JSON.stringify({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: c.dim, intermediate_size: c.hiddenDim, num_hidden_layers: c.nLayers,
      num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize, max_position_embeddings: c.contextLength,
      rms_norm_eps: c.normEps, rope_theta: c.ropeTheta, quantization_config: q,
    }));
    const hf = await loadHfModel(hfDir, { tokenizer: model.tokenizer });
    const own = await loadQuantizedSafetensors(join(hfDir, 'model.safetensors'));
    expect(hf.linear('blk.0.attn_q.weight').format).toBe('q4_0'); // INT4 on Q4_0 tiles
    expect(maxLogitDiff(own, hf)).toBe(0);
    // without the quantization_config the qweight tensors are an error that says so
    writeFileSync(join(hfDir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: c.dim, intermediate_size: c.hiddenDim, num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize }));
    await expect(loadHfModel(hfDir, { tokenizer: model.tokenizer })).rejects.toThrow(/qweight but no GPTQ quantization_config/);
    for (const m of [model, hf, own]) m.free();
  });

  it('asymmetric zero points of 0 (not representable in GPTQ v1, which stores zero − 1) switch the file to gptq_v2', async () => {
    const { model, packed } = await quantized((w, shape) => {
      const t = f16Scales(quantizeInt(w, shape, { bits: 4, symmetric: false, granularity: 'group-cols', group: 32 }));
      const zeros = (t.zeros as Float32Array).slice();
      zeros[0] = 0; // force one
      return { ...t, zeros };
    });
    const out = join(dir, 'v2.safetensors');
    await saveModelSafetensors(model, out, { packed });
    const st = await readSafetensors(out);
    expect(JSON.parse(st.metadata.quantize_config).checkpoint_format).toBe('gptq_v2');
    await st.source.close();
    const back = await loadQuantizedSafetensors(out);
    // on Q4_0 tiles with a group term; `source` gives the stored tensor back, zero points included
    const v = (back.linear('blk.0.attn_v.weight').source as { tensor: PackedIntTensor }).tensor;
    expect(v.zeros?.[0]).toBe(0);
    expect(v.zeros).toEqual((packed.get('blk.0.attn_v.weight') as PackedIntTensor).zeros);
    model.free();
    back.free();
  });

  it('MX (and INT-k widths GPTQ has no layout for) in the lowbit layout: one U8 blob per layer, described in __metadata__; a version-1 file is refused', async () => {
    const { model, packed } = await quantized((w, [rows, cols], name) => {
      if (name.includes('ffn_up')) return quantizeInt(w, [rows, cols], { bits: 5, granularity: 'group-cols', group: 32 });
      const nb = Math.ceil(cols / 32);
      const t: MxRowsTensor = { kind: 'mx-rows', format: 'mxfp6_e2m3', shape: [rows, cols], scales: new Uint8Array(rows * nb), codes: new Uint8Array(rows * cols) };
      for (let r = 0; r < rows; r++) {
        const q = quantizeMx(w.subarray(r * cols, (r + 1) * cols), { format: 'mxfp6_e2m3' });
        t.scales.set(q.scales, r * nb);
        t.codes.set(q.codes, r * cols);
      }
      return t;
    });
    const out = join(dir, 'mx.safetensors');
    await saveModelSafetensors(model, out, { packed });
    const st = await readSafetensors(out);
    expect(st.metadata.quantize_config).toBeUndefined();
    const d = JSON.parse(st.metadata['lowbit.tensors']);
    expect(d['model.layers.0.self_attn.q_proj']).toEqual({ type: 'LB_MXFP6_E2M3', shape: [64, 64] });
    expect(d['model.layers.0.mlp.up_proj']).toEqual({ type: 'LB_INT5', shape: [172, 64], params: { granularity: 'group-cols', group: 32, symmetric: true, g_idx: false } });
    expect(st.tensors.get('model.layers.0.self_attn.q_proj.lowbit_packed')).toMatchObject({ dtype: 'U8', shape: [64 * rowBytes(64, 6) + 64 * 2] });
    await st.source.close();
    const back = await loadQuantizedSafetensors(out);
    // exact codes and scales: the same tensors in memory take the same kernels (packed-fast.ts)
    for (const [name, t] of packed) model.setLinear(name, linearWeightFromPacked(t));
    expect(maxLogitDiff(model, back)).toBe(0);
    model.free();
    back.free();

    // the same file claiming format version 1 (f32 scales and zeros in LB_INT blobs) is refused by name
    const bytes = readFileSync(out);
    const at = bytes.indexOf('"lowbit.format_version":"2"');
    expect(at).toBeGreaterThan(0);
    bytes[at + '"lowbit.format_version":"'.length] = '1'.charCodeAt(0);
    const v1 = join(dir, 'mx-v1.safetensors');
    writeFileSync(v1, bytes);
    await expect(loadQuantizedSafetensors(v1)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/mlp\.up_proj: written by lowbit format version 1/) });
  });

  it('errors: mixed INT-k parameters, ggml block layers, a file lowbit did not write; nothing is left behind', async () => {
    const { model, packed } = await quantized((w, shape, name) => quantizeInt(w, shape, { bits: name.includes('attn_q') ? 3 : 4, granularity: 'group-cols', group: 32 }));
    const out = join(dir, 'mixed.safetensors');
    await expect(saveModelSafetensors(model, out, { packed })).rejects.toThrow(/int4 group 32 sym differs from the other layers' int3 group 32 sym/);
    const q = await loadModel(modelFile);
    q.setLinear('blk.0.attn_q.weight', { format: 'q8_0', shape: [64, 64], data: new Uint8Array(64 * 2 * 34) });
    await expect(saveModelSafetensors(q, out)).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const plain = join(dir, 'plain.safetensors');
    await writeSafetensors(plain, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    await expect(loadQuantizedSafetensors(plain)).rejects.toThrow(/not a model file lowbit wrote/);
    model.free();
    q.free();
  });
});
