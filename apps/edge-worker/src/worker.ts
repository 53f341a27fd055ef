// A Cloudflare Worker / workerd script serving a Llama-family GGUF: POST /generate {prompt, n,
// temperature?, top_p?, seed?} runs @lowbit/runtime's generation in the isolate, and POST /gemv
// answers y = W·x with the @lowbit/kernels WebAssembly module (both resolved through the packages'
// `workerd` export condition). The model is the embedded stories260K (a Data module) unless the
// MODEL_URL variable names another GGUF, read by range requests through the MODEL binding (a
// static-assets or service binding) or, without one, the worker's own fetch.
import modelBytes from '@lowbit/data/files/stories260K.gguf';
import { LowbitError, loadKernels } from '@lowbit/kernels';
import { bytesSource } from '@lowbit/runtime';
import { BadRequest, model as loadOnce, parseGenerateRequest, runGenerate } from './generate.js';
import { type FetcherLike, rangeSource } from './range-source.js';

export interface Env {
  /** A GGUF to serve instead of the embedded model: a URL, or a path on the MODEL binding. */
  MODEL_URL?: string;
  /** Where MODEL_URL is fetched from (the ASSETS or a service binding); the worker's fetch without it. */
  MODEL?: FetcherLike;
}

interface GemvRequest {
  rows: number;
  cols: number;
  x: number[];
  /** f32 weights, row-major [rows, cols] */
  w?: number[];
  /** or int4 weights (int-k packing, base64) with one scale per group */
  q4?: { packed: string; scales: number[]; zeros?: number[]; group: number };
}

const MODEL_NAME = 'stories260K.gguf';

function model(env: Env) {
  if (!env.MODEL_URL) return loadOnce(async () => bytesSource(new Uint8Array(modelBytes), MODEL_NAME));
  const url = env.MODEL_URL;
  return loadOnce(() => rangeSource(env.MODEL ?? { fetch: (input, init) => fetch(input, init) }, url));
}
const ROUTES = 'POST /generate {prompt, n, temperature?, top_p?, seed?}, POST /gemv {rows, cols, x, w | q4}, GET /model';

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

async function gemv(body: GemvRequest): Promise<Response> {
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
}

async function generateRoute(env: Env, body: unknown): Promise<Response> {
  const m = await model(env);
  try {
    const req = parseGenerateRequest(body, m.config.contextLength);
    return reply(200, { ...runGenerate(m, req), variant: m.kernels.variant });
  } catch (e) {
    if (e instanceof BadRequest) return reply(400, { error: e.message, field: e.field });
    throw e;
  }
}

async function modelRoute(env: Env): Promise<Response> {
  const m = await model(env);
  // the kernels' WebAssembly memory holds the weights and KV caches: most of the isolate's memory
  return reply(200, { model: m.name, config: m.config, variant: m.kernels.variant, wasm_memory_bytes: m.kernels.memory.buffer.byteLength });
}

async function route(request: Request, env: Env): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (request.method === 'GET' && pathname === '/model') return modelRoute(env);
  if (request.method !== 'POST' || (pathname !== '/gemv' && pathname !== '/generate')) return reply(404, { error: ROUTES });
  let body: unknown;
  try {
    // bytes, not request.json(): `curl -d` labels JSON as a form, and workerd warns when such a body is read as text
    body = JSON.parse(new TextDecoder().decode(await request.arrayBuffer()));
  } catch {
    return reply(400, { error: 'body: not JSON', field: 'body' });
  }
  return pathname === '/gemv' ? gemv(body as GemvRequest) : generateRoute(env, body);
}

export default {
  async fetch(request: Request, env: Env = {}): Promise<Response> {
    try {
      return await route(request, env);
    } catch (e) {
      // a failure of the worker (a model that does not load), not of the request: say what failed
      // instead of workerd's bare 500
      const code = e instanceof LowbitError ? e.code : undefined;
      return reply(500, { error: e instanceof Error ? e.message : String(e), code });
    }
  },
};
