// An in-memory stand-in for the runtime's file functions, installed in the demo worker so that the
// runtime's path-only writers (saveModelSafetensors → writeSafetensors → writeFileAtomic) run in a
// browser: the "file" is collected in memory and handed to the page as bytes. Only writing is
// served; reading a path still fails with the runtime's own E_UNSUPPORTED, as in any browser.
// The runtime's universal entry does not export installNodeFiles (a Node entry detail), so the demo
// reaches the module file itself; Vite resolves it to the same module instance the runtime uses.
import { LowbitError } from '@lowbit/runtime';
import { type FileHandleLike, type NodeFiles, installNodeFiles } from '../../../packages/runtime/dist/file-system.js';

const files = new Map<string, Uint8Array[]>();

function handle(path: string): FileHandleLike {
  const chunks: Uint8Array[] = [];
  files.set(path, chunks);
  return {
    read: () => Promise.reject(new LowbitError('E_UNSUPPORTED', `${path}: the demo's in-memory files are write-only`)),
    // writers may hand out views of WebAssembly memory that the next call overwrites: copy
    write: async (b) => chunks.push(b.slice()),
    stat: async () => ({ size: chunks.reduce((a, c) => a + c.length, 0) }),
    sync: async () => {},
    close: async () => {},
  };
}

const memoryFiles: NodeFiles = {
  async open(path, flags) {
    if (flags !== 'w') throw new LowbitError('E_UNSUPPORTED', `${path}: file paths need Node; in the browser the demo passes bytes`);
    return handle(path);
  },
  async rename(from, to) {
    const c = files.get(from);
    if (!c) throw new LowbitError('E_MISSING', `${from}: no such in-memory file`);
    files.delete(from);
    files.set(to, c);
  },
  async rm(path) {
    files.delete(path);
  },
  readdir: async () => [],
  readFile: (path) => Promise.reject(new LowbitError('E_UNSUPPORTED', `${path}: the demo's in-memory files are write-only`)),
  mkdir: async () => undefined,
  existsSync: (path) => files.has(path),
  join: (...parts) => parts.join('/'),
  dirname: (path) => path.slice(0, Math.max(0, path.lastIndexOf('/'))) || '.',
  basename: (path) => path.slice(path.lastIndexOf('/') + 1),
  fileURLToPath: (url) => url,
  pid: 1,
  processAlive: () => true,
};

/** Runs `write(path)` against memory and returns the bytes written to `path` (the file is then forgotten). */
export async function writeToMemory(name: string, write: (path: string) => Promise<void>): Promise<Uint8Array> {
  installNodeFiles(memoryFiles);
  const path = `/memory/${name}`;
  try {
    await write(path);
    const chunks = files.get(path);
    if (!chunks) throw new LowbitError('E_IO', `${name}: the writer finished without writing the file`);
    const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  } finally {
    files.clear();
  }
}
