// Starts the worker as `npm start` does (modules laid out by scripts/workerd-modules.mjs, served by
// the npm `workerd` binary with workerd.capnp, here on a free port of 127.0.0.1) and checks its GEMV
// answers against @lowbit/kernels' TypeScript reference.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reference } from '@lowbit/kernels';
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
