// A Cloudflare Worker / workerd script: POST a GEMV as JSON, get y = W·x back, computed by the
// @lowbit/kernels WebAssembly module (resolved through the package's `workerd` export condition).
import { LowbitError, loadKernels } from '@lowbit/kernels';

interface GemvRequest {
  rows: number;
  cols: number;
  x: number[];
  /** f32 weights, row-major [rows, cols] */
  w?: number[];
  /** or int4 weights (int-k packing, base64) with one scale per group */
  q4?: { packed: string; scales: number[]; zeros?: number[]; group: number };
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== 'POST' || url.pathname !== '/gemv') return reply(404, { error: 'POST /gemv' });
    let body: GemvRequest;
    try {
      body = (await request.json()) as GemvRequest;
    } catch {
      return reply(400, { error: 'body is not JSON' });
    }
    try {
      const k = await loadKernels();
      const x = Float32Array.from(body.x ?? []);
      const y = body.q4
        ? k.gemvQ4(fromBase64(body.q4.packed), Float32Array.from(body.q4.scales), body.q4.zeros ? Float32Array.from(body.q4.zeros) : null, body.rows, body.cols, body.q4.group, x)
        : k.gemvF32(Float32Array.from(body.w ?? []), body.rows, body.cols, x);
      return reply(200, { variant: k.variant, y: Array.from(y) });
    } catch (e) {
      if (e instanceof LowbitError) return reply(400, { error: e.message, code: e.code });
      throw e;
    }
  },
};
