// rangeSource against an in-memory server: what the model loader reads equals the bytes, through
// as few range requests as the chunking promises; a server that ignores ranges is read whole up to a limit.
import { LowbitError } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { type FetcherLike, WHOLE_FILE_LIMIT, rangeSource } from '../src/range-source.js';

function server(bytes: Uint8Array<ArrayBuffer>, honourRanges = true): FetcherLike & { ranges: string[] } {
  const ranges: string[] = [];
  return {
    ranges,
    async fetch(_url, init) {
      const range = new Headers(init?.headers).get('range') ?? '';
      ranges.push(range);
      if (!honourRanges) return new Response(bytes, { status: 200 });
      const [a, b] = range.replace('bytes=', '').split('-').map(Number);
      const end = Math.min(b, bytes.length - 1);
      return new Response(bytes.slice(a, end + 1), { status: 206, headers: { 'content-range': `bytes ${a}-${end}/${bytes.length}` } });
    },
  };
}

describe('rangeSource', () => {
  const bytes: Uint8Array<ArrayBuffer> = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 37 + (i >> 8)) & 255);

  it('reads every range exactly, one request per chunk when reading in order', async () => {
    const s = server(bytes);
    const src = await rangeSource(s, 'http://x/m.gguf', 1024);
    expect(src.size).toBe(bytes.length);
    // small reads in file order, as the GGUF header and tensors are read
    for (let off = 0; off < bytes.length; off += 100) {
      const n = Math.min(100, bytes.length - off);
      expect(await src.read(off, n)).toEqual(bytes.slice(off, off + n));
    }
    // 10 000 bytes in 1024-byte chunks starting at 0, 1000, 2000, ... (a read that crosses a chunk's
    // end refetches from its own offset): one request per 1000 bytes
    expect(s.ranges.length).toBe(10);
    // a read of a chunk or more is fetched alone, exactly
    expect(await src.read(3, 5000)).toEqual(bytes.slice(3, 5003));
    expect(s.ranges.at(-1)).toBe('bytes=3-5002');
    await expect(src.read(9_999, 2)).rejects.toThrow(/needs bytes 9999\.\.10001 but holds 10000/);
  });

  it('takes a small file whole from a server that ignores ranges, and refuses a large one', async () => {
    const s = server(bytes, false);
    const src = await rangeSource(s, 'http://x/m.gguf', 1024);
    expect(src.size).toBe(bytes.length);
    expect(await src.read(5000, 3000)).toEqual(bytes.slice(5000, 8000));
    expect(s.ranges.length).toBe(1);

    const big: FetcherLike = { fetch: async () => new Response('x', { status: 200, headers: { 'content-length': String(WHOLE_FILE_LIMIT + 1) } }) };
    const err = await rangeSource(big, 'http://x/big.gguf').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LowbitError);
    expect((err as LowbitError).code).toBe('E_IO');
    expect((err as Error).message).toMatch(/http:\/\/x\/big\.gguf: the server ignores range requests and sends more than 33554432 bytes/);
    // without a Content-Length the body is read only up to the limit
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(1 << 20));
      },
    });
    const stream: FetcherLike = { fetch: async () => new Response(endless, { status: 200 }) };
    await expect(rangeSource(stream, 'http://x/endless.gguf')).rejects.toThrow(/sends more than 33554432 bytes/);
  });
});
