// Checks on the paths a command reads and writes, made before any work so that a directory given
// for a file (or a file for a directory) is a LowbitError naming the path, not a failure from deep
// inside a reader or writer.
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { LowbitError } from '@lowbit/runtime';

function kind(path: string): 'file' | 'dir' | 'other' | 'missing' {
  try {
    const s = statSync(path);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

export function isDirectory(path: string): boolean {
  return kind(path) === 'dir';
}

/** An input that must be one file (`what`: "a .gguf file"); a missing file is left to the reader, which names it. */
export function checkInputFile(path: string, what: string): void {
  if (kind(path) === 'dir') throw new LowbitError('E_ARG', `${path}: is a directory; expected ${what}`);
}

/** An output file: not an existing directory, in a directory that exists. */
export function checkOutputFile(path: string, option = '--out'): void {
  const k = kind(path);
  if (k === 'dir') throw new LowbitError('E_ARG', `${option} ${path}: is a directory; name the file to write`);
  if (k === 'other') throw new LowbitError('E_ARG', `${option} ${path}: exists and is not a regular file`);
  const parent = dirname(path);
  if (kind(parent) !== 'dir') throw new LowbitError('E_IO', `${option} ${path}: the directory ${parent} does not exist`);
}

/** An output directory (created with its parents if missing): never an existing file. */
export function checkOutputDir(path: string, option = '--out'): void {
  const k = kind(path);
  if (k === 'file' || k === 'other') throw new LowbitError('E_ARG', `${option} ${path}: exists and is not a directory; name a directory to write into`);
}
