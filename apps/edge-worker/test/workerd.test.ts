// Starts the worker as `npm start` does (modules laid out by scripts/workerd-modules.mjs, served by
// the npm `workerd` binary with workerd.capnp, here on a free port of 127.0.0.1) and checks its GEMV
// answers against @lowbit/kernels' TypeScript reference and its generated tokens against Node's
// @lowbit/runtime running the same embedded model.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { reference } from '@lowbit/kernels';
import { type DecoderModel, generate, loadModel } from '@lowbit/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layOutModules, workerdBin } from '../scripts/workerd-modules.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

let proc: ChildProcess | undefined;
let base = '';
let stderr = '';

beforeAll(async () => {
  // the config `npm start` serves, on a free port
  layOutModules();
  const port = await freePort();
  proc = spawn(workerdBin, ['serve', join(here, '..', 'workerd.capnp'), '--socket-addr', `http=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`workerd exited (${proc.exitCode}): ${stderr}`);
    try {
      await fetch(`${base}/`);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`workerd did not listen within 20 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 30_000);

afterAll(() => {
  proc?.kill('SIGTERM');
});

async function post(body: unknown): Promise<{ status: number; json: { y?: number[]; variant?: string; code?: string; error?: string } }> {
  const r = await fetch(`${base}/gemv`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as never };
}

describe('edge worker in workerd', () => {
  it('answers an f32 GEMV like the reference', async () => {
    const rows = 13;
    const cols = 37;
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37));
    const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i * 0.11));
    const { status, json } = await post({ rows, cols, w: Array.from(w), x: Array.from(x) });
    expect(status).toBe(200);
    expect(['relaxed', 'simd']).toContain(json.variant);
    const want = reference.gemvF32(w, rows, cols, x);
    // f32 SIMD sum vs f64 reference over 37 products of magnitude <= 1: 1e-5 absolute.
    json.y!.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
  });

  it('answers an int4 group GEMV like the reference', async () => {
    const rows = 6;
    const cols = 96;
    const packed = Uint8Array.from({ length: rows * cols / 2 }, (_, i) => (i * 151) & 255);
    const scales = Float32Array.from({ length: rows * 3 }, (_, i) => 0.01 + i * 0.001);
    const x = Float32Array.from({ length: cols }, (_, i) => Math.sin(i));
    const { status, json } = await post({ rows, cols, x: Array.from(x), q4: { packed: Buffer.from(packed).toString('base64'), scales: Array.from(scales), group: 32 } });
    expect(status).toBe(200);
    const want = reference.gemvQ4(packed, scales, null, rows, cols, 32, x);
    // The integer dot is exact; only the f32 scaling and summation differ (1e-5 relative).
    json.y!.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]))));
  });

  it('turns a bad shape into a 400 with the LowbitError code', async () => {
    const { status, json } = await post({ rows: 2, cols: 3, w: [1, 2, 3], x: [1, 2, 3] });
    expect(status).toBe(400);
    expect(json.code).toBe('E_SHAPE');
  });
});

interface GenerateJson {
  text?: string;
  tokens?: number[];
  prompt_tokens?: number[];
  stop_reason?: string;
  tokens_per_second?: number | null;
  error?: string;
  field?: string;
}

async function postGenerate(body: string): Promise<{ status: number; json: GenerateJson }> {
  const r = await fetch(`${base}/generate`, { method: 'POST', body });
  return { status: r.status, json: (await r.json()) as GenerateJson };
}

describe('edge worker generates with the embedded model', () => {
  let node: DecoderModel;
  beforeAll(async () => {
    node = await loadModel(fileURLToPath(defaultModelUrl));
  });
  afterAll(() => node?.free());

  it('gives the same greedy tokens as Node', async () => {
    for (const prompt of ['Once upon a time', 'The cat sat on the mat. Then']) {
      const want = generate(node, prompt, { steps: 48, temperature: 0 });
      const { status, json } = await postGenerate(JSON.stringify({ prompt, n: 48 }));
      expect(status, json.error).toBe(200);
      expect(json.prompt_tokens).toEqual(want.prompt);
      expect(json.tokens).toEqual(want.tokens);
      expect(json.text).toBe(want.text);
      expect(json.stop_reason).toBe(want.stopReason);
      expect(json.tokens!.length).toBeGreaterThan(0);
    }
  });

  it('samples the same tokens as Node for the same seed', async () => {
    const want = generate(node, 'Lily', { steps: 32, temperature: 0.9, topP: 0.95, seed: 7 });
    const { status, json } = await postGenerate(JSON.stringify({ prompt: 'Lily', n: 32, temperature: 0.9, top_p: 0.95, seed: 7 }));
    expect(status, json.error).toBe(200);
    expect(json.tokens).toEqual(want.tokens);
  });

  it('answers a bad request with a 400 naming the field', async () => {
    const cases: [string, string][] = [
      ['{"prompt": "Once", "n": ', 'body'],
      ['[1, 2]', 'body'],
      ['{"n": 8}', 'prompt'],
      ['{"prompt": 3, "n": 8}', 'prompt'],
      ['{"prompt": "Once"}', 'n'],
      ['{"prompt": "Once", "n": 0}', 'n'],
      ['{"prompt": "Once", "n": 2.5}', 'n'],
      ['{"prompt": "Once", "n": "8"}', 'n'],
      ['{"prompt": "Once", "n": 1000000}', 'n'],
      ['{"prompt": "Once", "n": 8, "temperature": -1}', 'temperature'],
      ['{"prompt": "Once", "n": 8, "top_p": 2}', 'top_p'],
      ['{"prompt": "Once", "n": 8, "seed": -3}', 'seed'],
    ];
    for (const [body, field] of cases) {
      const { status, json } = await postGenerate(body);
      expect(status, body).toBe(400);
      expect(json.field, body).toBe(field);
      expect(json.error, body).toMatch(new RegExp(`^${field}:`));
    }
  });
});
