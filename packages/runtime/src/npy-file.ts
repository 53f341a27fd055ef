// .npy files on disk (Node): read whole, written atomically. The codec is npy.ts.
import { LowbitError, isLowbitError } from '@lowbit/kernels';
import { writeFileAtomic } from './atomic-file.js';
import { fileSource } from './byte-source.js';
import { type NpyArray, type NpyData, formatNpy, parseNpy } from './npy.js';

export async function readNpy(path: string): Promise<NpyArray> {
  const source = await fileSource(path);
  try {
    return parseNpy(await source.read(0, source.size), path);
  } finally {
    await source.close();
  }
}

/** Writes atomically (writeFileAtomic), so a failed write leaves no partial file. */
export async function writeNpy(path: string, data: NpyData, shape: number[]): Promise<void> {
  const bytes = formatNpy(data, shape);
  await writeFileAtomic(path, async (out) => {
    await out.write(bytes);
  }).catch((e: Error) => {
    throw isLowbitError(e) ? e : new LowbitError('E_IO', `${path}: cannot write (${e.message})`);
  });
}
