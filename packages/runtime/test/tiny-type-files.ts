// The setup of the suites that run lowbit's files in both engines: a tiny random llama whose every
// matrix has rows of 256 (dim 256, FFN 512, 4 heads of 64, 2 KV heads) written as F32 and converted by
// lowbit to each type under test, the F32 model loaded as the control, the token ids of the first
// validation lines, and llama.cpp opened (or the reason it cannot be).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { TensorType } from '../src/ggml-types.js';
import { quantizeGguf } from '../src/gguf-convert.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { validLines } from './helpers.js';
import { type LlamaCpp, openLlamaCpp } from './llama-cpp-lib.js';
import { writeTinyGguf } from './tiny-models.js';

export const TINY_DIMS = { D: 256, F: 512, CTX: 256 };

export interface TinyTypeFiles {
  dir: string;
  /** the F32 file */
  f32: string;
  /** the file of one type under test */
  path(type: string): string;
  llama?: LlamaCpp;
  skipReason: string;
  ids: number[];
  /** the F32 model: the control every log-prob comparison is held against */
  unquantized: DecoderModel;
}

/** Call inside a describe: the fields are set by its beforeAll and released by its afterAll. */
export function tinyTypeFiles(what: string, types: readonly TensorType[]): TinyTypeFiles {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-types-'));
  const files = { dir, f32: join(dir, 'tiny-f32.gguf'), path: (type: string) => join(dir, `tiny-${type}.gguf`), skipReason: '', ids: [] } as unknown as TinyTypeFiles;
  beforeAll(async () => {
    Object.assign(files, await openLlamaCpp(what));
    await writeTinyGguf('llama', files.f32, 4242, TINY_DIMS);
    for (const t of types) await quantizeGguf(files.f32, files.path(t), t);
    files.unquantized = await loadModel(files.f32);
    files.ids = files.unquantized.tokenizer.encode(validLines.slice(0, 6).join(' ')).slice(0, 200);
  });
  afterAll(async () => {
    files.unquantized?.free();
    await files.llama?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  return files;
}
