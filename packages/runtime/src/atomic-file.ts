// Writers never leave a half-written file: the bytes go to `<path>.tmp-<pid>`, which is synced and
// renamed over `path` only once everything is written; on any failure it is removed. node:fs is
// imported on use, so browser bundles of the runtime (which never write files) do not pull it in.
import { LowbitError } from '@lowbit/kernels';

/** Where a writer's bytes go, in order. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<unknown>;
}

/** Runs `body` against a temporary file and renames it to `path` when `body` resolves. */
export async function writeFileAtomic(path: string, body: (out: ByteSink) => Promise<void>): Promise<void> {
  const { open, rename, rm } = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w').catch((e: Error) => {
    throw new LowbitError('E_IO', `${path}: cannot write (${e.message})`, { cause: e });
  });
  try {
    await body({ write: (b) => fh.write(b) });
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}

/** `text` as UTF-8, written as writeFileAtomic writes. */
export function writeTextAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, async (out) => {
    await out.write(new TextEncoder().encode(text));
  });
}
