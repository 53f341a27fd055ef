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
    async close() {
      held = null;
    },
  };
}

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
  return {
    name: path,
    size,
    async read(offset, length) {
      if (offset + length > size) {
        throw new LowbitError('E_TRUNCATED', `${path}: needs bytes ${offset}..${offset + length} but the file has ${size}`);
      }
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new LowbitError('E_TRUNCATED', `${path}: ended at ${offset + done} while reading ${length} bytes from ${offset}`);
        done += bytesRead;
      }
      return buf;
    },
    close: () => fh.close(),
  };
}
