// A GGUF read by HTTP range requests: a Workers static asset (the ASSETS binding), a service
// binding, or any URL the worker may fetch (an R2 bucket's public URL). Reads go through one cached
// chunk, because the model loader asks for the header in small pieces and then tensor by tensor in
// file order: chunking turns ~10 reads per tensor into one subrequest per CHUNK bytes (the Free plan
// allows 50 subrequests per request), and the file is never held whole next to the weights. A
// server that ignores ranges and sends a file of at most WHOLE_FILE_LIMIT bytes (a static asset is
// at most 25 MiB) is read whole instead.
import { type ByteSource, LowbitError, bytesSource } from '@lowbit/runtime';

export interface FetcherLike {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/** Bytes fetched per subrequest (a tensor larger than this is fetched alone, exactly). */
export const CHUNK = 8 << 20;

/** The largest file taken whole from a server that answers a range request with the whole file. */
export const WHOLE_FILE_LIMIT = 32 << 20;

/** The total size from `Content-Range: bytes a-b/total`. */
function totalSize(url: string, contentRange: string | null): number {
  const m = /^bytes \d+-\d+\/(\d+)$/.exec(contentRange ?? '');
  if (!m) throw new LowbitError('E_IO', `${url}: a range request was answered without a usable Content-Range (${JSON.stringify(contentRange)})`);
  return Number(m[1]);
}

/** The body if it has at most `limit` bytes, else null (without reading past the limit). */
async function readCapped(r: Response, limit: number): Promise<Uint8Array | null> {
  if (Number(r.headers.get('content-length') ?? 0) > limit || !r.body) {
    await r.body?.cancel();
    return r.body ? null : new Uint8Array(0);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > limit) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export async function rangeSource(fetcher: FetcherLike, url: string, chunk = CHUNK): Promise<ByteSource> {
  async function get(offset: number, length: number): Promise<{ bytes: Uint8Array; size: number; whole?: boolean }> {
    let r: Response;
    try {
      r = await fetcher.fetch(url, { headers: { range: `bytes=${offset}-${offset + length - 1}` } });
    } catch (e) {
      throw new LowbitError('E_IO', `${url}: fetch failed (${(e as Error).message})`, { cause: e });
    }
    if (r.status === 200 && offset === 0) {
      const bytes = await readCapped(r, WHOLE_FILE_LIMIT);
      if (bytes) return { bytes, size: bytes.byteLength, whole: true };
      throw new LowbitError('E_IO', `${url}: the server ignores range requests and sends more than ${WHOLE_FILE_LIMIT} bytes (the most read whole)`);
    }
    if (r.status !== 206) {
      await r.body?.cancel();
      throw new LowbitError('E_IO', `${url}: bytes ${offset}..${offset + length}: HTTP ${r.status}`);
    }
    const size = totalSize(url, r.headers.get('content-range'));
    const bytes = new Uint8Array(await r.arrayBuffer());
    if (bytes.byteLength !== Math.min(length, size - offset)) {
      throw new LowbitError('E_TRUNCATED', `${url}: asked bytes ${offset}..${offset + length}, got ${bytes.byteLength}`);
    }
    return { bytes, size };
  }

  const first = await get(0, chunk);
  if (first.whole) return bytesSource(first.bytes, url);
  const size = first.size;
  let held: { offset: number; bytes: Uint8Array } | null = { offset: 0, bytes: first.bytes };
  return {
    name: url,
    size,
    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new LowbitError('E_TRUNCATED', `${url}: needs bytes ${offset}..${offset + length} but holds ${size}`);
      }
      if (held && offset >= held.offset && offset + length <= held.offset + held.bytes.byteLength) {
        return held.bytes.slice(offset - held.offset, offset - held.offset + length);
      }
      if (length >= chunk) return (await get(offset, length)).bytes;
      const { bytes } = await get(offset, Math.min(chunk, size - offset));
      held = { offset, bytes };
      return bytes.slice(0, length);
    },
    async close() {
      held = null;
    },
  };
}
