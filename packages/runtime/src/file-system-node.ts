// Node's file functions, installed for the code that takes paths (file-system.ts says why they are
// not imported where they are used). Imported for its side effect by the Node entries.
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FileHandleLike, installNodeFiles } from './file-system.js';

installNodeFiles({
  open: (path, flags) => open(path, flags) as Promise<FileHandleLike>,
  rename,
  rm,
  readdir: (path) => readdir(path),
  readFile: (path, encoding) => readFile(path, encoding),
  mkdir,
  existsSync,
  join,
  dirname,
  basename,
  fileURLToPath,
  pid: process.pid,
  processAlive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      // EPERM: it exists but belongs to another user; only ESRCH says nobody has that id
      return (e as NodeJS.ErrnoException).code !== 'ESRCH';
    }
  },
});
