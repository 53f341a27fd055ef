// Defaults every command shares: the embedded model and validation text of @lowbit/data.
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';

export function modelPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(defaultModelUrl);
}

export function textPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(validTextUrl);
}
