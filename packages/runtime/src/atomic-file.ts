// Writers never leave a half-written file: the bytes go to `<path>.tmp-<pid>`, which is synced and
// renamed over `path` only once everything is written; on any failure it is removed. A process killed
// mid-write cannot remove its temporary file, so each write first removes the temporary files of the
// same target whose process id no longer runs on this machine (a temp of a live process may be a
// write in progress). Node only: the file functions come from file-system.ts.
import { LowbitError } from '@lowbit/kernels';
import { type NodeFiles, nodeFiles } from './file-system.js';

/** Where a writer's bytes go, in order. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<unknown>;
}

/** `<path>.tmp-<pid>`: the temporary name a writer uses for `path`. */
export function tempPath(path: string, pid: number): string {
  return `${path}.tmp-${pid}`;
}

/**
 * Removes `<path>.tmp-<pid>` files left by writers that were killed: those whose pid is not a live
 * process here (ours and live ones are kept). Returns the names removed. Best effort: a directory that
 * cannot be listed, or a temp removed meanwhile by another writer, is not an error.
 */
export async function removeStaleTemps(path: string, fs: NodeFiles = nodeFiles(path)): Promise<string[]> {
  const dir = fs.dirname(path);
  const prefix = `${fs.basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pidText = name.slice(prefix.length);
    if (!/^[1-9][0-9]{0,9}$/.test(pidText)) continue;
    const pid = Number(pidText);
    if (pid === fs.pid || fs.processAlive(pid)) continue;
    await fs.rm(fs.join(dir, name), { force: true }).catch(() => {});
    removed.push(name);
  }
  return removed;
}

/** Runs `body` against a temporary file and renames it to `path` when `body` resolves. */
export async function writeFileAtomic(path: string, body: (out: ByteSink) => Promise<void>): Promise<void> {
  const fs = nodeFiles(path);
  await removeStaleTemps(path, fs);
  const tmp = tempPath(path, fs.pid);
  const fh = await fs.open(tmp, 'w').catch((e: Error) => {
    throw new LowbitError('E_IO', `${path}: cannot write (${e.message})`, { cause: e });
  });
  try {
    await body({ write: (b) => fh.write(b) });
    await fh.sync();
    await fh.close();
    await fs.rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** `text` as UTF-8, written as writeFileAtomic writes. */
export function writeTextAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, async (out) => {
    await out.write(new TextEncoder().encode(text));
  });
}
