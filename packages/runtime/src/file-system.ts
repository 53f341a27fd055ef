// The file system, where there is one. The universal entry of @lowbit/runtime (browsers, workers,
// edge runtimes) imports no Node built-in, not even lazily, so bundlers never meet `node:fs`; the
// Node entry (index-node.ts, what `@lowbit/runtime` resolves to under Node, and
// `@lowbit/runtime/node`) installs these functions on import. Code that takes a path asks here and
// gets a named error where no file system was installed.
import { LowbitError } from '@lowbit/kernels';

/** The parts of a Node FileHandle the runtime uses. */
export interface FileHandleLike {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(bytes: Uint8Array): Promise<unknown>;
  stat(): Promise<{ size: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The Node file functions the runtime uses (node:fs/promises, node:fs, node:path, node:url, process). */
export interface NodeFiles {
  open(path: string, flags: 'r' | 'w'): Promise<FileHandleLike>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: boolean }): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<unknown>;
  existsSync(path: string): boolean;
  join(...parts: string[]): string;
  dirname(path: string): string;
  basename(path: string): string;
  fileURLToPath(url: string): string;
  /** This process's id. */
  readonly pid: number;
  /** Whether a process with this id runs on this machine (signal 0: a probe that sends nothing). */
  processAlive(pid: number): boolean;
}

let installed: NodeFiles | undefined;

/** Called once by the Node entry. */
export function installNodeFiles(files: NodeFiles): void {
  installed = files;
}

/** The installed file functions, or E_UNSUPPORTED naming `path` where there are none. */
export function nodeFiles(path: string): NodeFiles {
  if (!installed) {
    throw new LowbitError('E_UNSUPPORTED', `${path}: file paths need Node (import from '@lowbit/runtime/node'); elsewhere pass bytes or a ByteSource (bytesSource)`);
  }
  return installed;
}
