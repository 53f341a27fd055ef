import { expect } from 'vitest';
import { isLowbitError } from '../src/index.js';

/** Runs `fn` and returns the code of the LowbitError it throws ('none' if it returns); any other error fails the test. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isLowbitError(e)).toBe(true);
    return (e as { code: string }).code;
  }
  return 'none';
}
