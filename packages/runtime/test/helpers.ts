import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';

export const modelFile = fileURLToPath(defaultModelUrl);
export const validLines = readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').filter((l) => l.trim().length > 0);

/** log softmax(logits[row])[target] in f64. */
export function logProb(logits: Float32Array, row: number, vocab: number, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[row * vocab + j]);
  let z = 0;
  for (let j = 0; j < vocab; j++) z += Math.exp(logits[row * vocab + j] - max);
  return logits[row * vocab + target] - max - Math.log(z);
}
