// Starts the worker as `npm start` does (modules laid out by scripts/workerd-modules.mjs, served by
// the npm `workerd` binary with workerd.capnp, here on a free port of 127.0.0.1) and checks its GEMV
// answers against @lowbit/kernels' TypeScript reference and its generated tokens against Node's
// @lowbit/runtime running the same embedded model.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { reference } from '@lowbit/kernels';
import { type DecoderModel, generate, loadModel, quantizeGguf } from '@lowbit/runtime';
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

/** Serves `config` with the npm workerd binary on a free port; resolves once it answers. */
async function serveWorkerd(config: string): Promise<{ proc: ChildProcess; base: string }> {
  const port = await freePort();
  const child = spawn(workerdBin, ['serve', config, '--socket-addr', `http=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`workerd exited (${child.exitCode}): ${stderr}`);
    try {
      await fetch(`${url}/`);
      return { proc: child, base: url };
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new Error(`workerd did not listen within 20 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

beforeAll(async () => {
  // the config `npm start` serves, on a free port
  layOutModules();
  ({ proc, base } = await serveWorkerd(join(here, '..', 'workerd.capnp')));
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

async function postGenerate(body: string, at = base): Promise<{ status: number; json: GenerateJson }> {
  const r = await fetch(`${at}/generate`, { method: 'POST', body });
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

describe('edge worker with a GGUF bound through MODEL_URL', () => {
  // a Q8_0 copy of the embedded model, served with range requests by a local HTTP server standing
  // in for a static-assets binding; the worker reaches it through a workerd service binding
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-edge-'));
  const file = join(dir, 'stories260K-q8_0.gguf');
  let server: Server | undefined;
  let bound: ChildProcess | undefined;
  let boundBase = '';
  const ranges: string[] = [];

  beforeAll(async () => {
    await quantizeGguf(fileURLToPath(defaultModelUrl), file, 'Q8_0');
    const bytes = readFileSync(file);
    server = createHttpServer((req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (req.url !== '/stories260K-q8_0.gguf' || !m) {
        res.writeHead(req.url === '/stories260K-q8_0.gguf' ? 200 : 404).end();
        return;
      }
      ranges.push(m[0]);
      const start = Number(m[1]);
      const end = Math.min(Number(m[2]), bytes.length - 1);
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': end - start + 1 });
      res.end(bytes.subarray(start, end + 1));
    });
    const port = await new Promise<number>((resolve) => server!.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port)));
    // next to modules.capnp, whose `embed` paths are relative to it
    const config = join(here, '..', 'dist', 'workerd', 'bound-test.capnp');
    writeFileSync(
      config,
      `using Workerd = import "/workerd/workerd.capnp";
using Modules = import "modules.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker), (name = "files", external = (address = "127.0.0.1:${port}", http = ()))],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = Modules.modules,
  compatibilityDate = "2025-05-05",
  bindings = [(name = "MODEL", service = "files"), (name = "MODEL_URL", text = "http://files/stories260K-q8_0.gguf")],
);
`,
    );
    ({ proc: bound, base: boundBase } = await serveWorkerd(config));
  }, 30_000);

  afterAll(() => {
    bound?.kill('SIGTERM');
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the bound GGUF by range requests and generates what Node generates from it', async () => {
    const node = await loadModel(file);
    try {
      const want = generate(node, 'Once upon a time', { steps: 32, temperature: 0 });
      const { status, json } = await postGenerate(JSON.stringify({ prompt: 'Once upon a time', n: 32 }), boundBase);
      expect(status, json.error).toBe(200);
      expect((json as { model?: string }).model).toBe('http://files/stories260K-q8_0.gguf');
      expect(json.tokens).toEqual(want.tokens);
    } finally {
      node.free();
    }
    // the whole file is smaller than one 8 MiB chunk: one range request loads it
    expect(ranges).toEqual(['bytes=0-8388607']);
  });
});
