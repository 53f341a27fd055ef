// Where model bytes come from. Files are read range by range through a file handle so a model
// larger than 2 GB (or than one ArrayBuffer) never has to sit in memory at once; browsers and tests
// hand in bytes they already hold.
import { LowbitError } from '@lowbit/kernels';
import { type FileHandleLike, nodeFiles } from './file-system.js';

export interface ByteSource {
  /** Shown in every error message about this source. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset`, or a LowbitError E_TRUNCATED. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Bytes offset..offset + dst.byteLength straight into `dst` (a view of WebAssembly memory, say),
   * without an intermediate array: how the loaders move hundreds of MB per tensor. Optional for
   * sources made elsewhere; the loaders fall back to `read` and a copy.
   */
  readInto?(offset: number, dst: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/**
 * Bytes already in memory. Reads are copies, so nothing a model keeps (its token embeddings, packed
 * tensors) pins the whole buffer, and `close()` lets it go: a worker that fetched a GGUF holds it
 * once while loading, not for the model's lifetime.
 */
export function bytesSource(bytes: Uint8Array, name = '<bytes>'): ByteSource {
  let held: Uint8Array | null = bytes;
  const size = bytes.byteLength;
  return {
    name,
    size,
    async read(offset, length) {
      if (!held) throw new LowbitError('E_IO', `${name}: read after close()`);
      if (offset + length > size) {
        throw new LowbitError('E_TRUNCATED', `${name}: needs bytes ${offset}..${offset + length} but holds ${size}`);
      }
      return held.slice(offset, offset + length);
    },
    async readInto(offset, dst) {
      if (!held) throw new LowbitError('E_IO', `${name}: read after close()`);
      if (offset + dst.byteLength > size) {
        throw new LowbitError('E_TRUNCATED', `${name}: needs bytes ${offset}..${offset + dst.byteLength} but holds ${size}`);
      }
      dst.set(held.subarray(offset, offset + dst.byteLength));
    },
    async close() {
      held = null;
    },
  };
}

const READ_CHUNK = 64 * 2 ** 20;

/** A file read range by range (Node: the universal entry has no file system, see file-system.ts). */
export async function fileSource(path: string): Promise<ByteSource> {
  const { open } = nodeFiles(path);
  let fh: FileHandleLike;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new LowbitError('E_IO', `${path}: cannot open (${(e as Error).message})`, { cause: e });
  }
  const size = (await fh.stat()).size;
  const readInto = async (offset: number, buf: Uint8Array) => {
    const length = buf.byteLength;
    if (offset + length > size) {
      throw new LowbitError('E_TRUNCATED', `${path}: needs bytes ${offset}..${offset + length} but the file has ${size}`);
    }
    let done = 0;
    while (done < length) {
      // one read(2) moves at most ~2 GiB (Linux caps it below 2^31); 64 MiB chunks keep each call large and sequential
      const { bytesRead } = await fh.read(buf, done, Math.min(length - done, READ_CHUNK), offset + done);
      if (bytesRead === 0) throw new LowbitError('E_TRUNCATED', `${path}: ended at ${offset + done} while reading ${length} bytes from ${offset}`);
      done += bytesRead;
    }
  };
  return {
    name: path,
    size,
    async read(offset, length) {
      const buf = new Uint8Array(length);
      await readInto(offset, buf);
      return buf;
    },
    readInto,
    close: () => fh.close(),
  };
}
