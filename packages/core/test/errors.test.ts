import { describe, expect, it } from 'vitest';
import { LowbitError, isLowbitError } from '../src/index.js';

describe('LowbitError', () => {
  it('carries its code, message, name and cause, and is an Error', () => {
    const cause = new RangeError('inner');
    const e = new LowbitError('E_SHAPE', 'tensor w: shape [2, 3] does not match [3, 2]', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('E_SHAPE');
    expect(e.name).toBe('LowbitError');
    expect(e.message).toBe('tensor w: shape [2, 3] does not match [3, 2]');
    expect(e.cause).toBe(cause);
  });

  it('isLowbitError: true for LowbitError and for one made by another copy of the class; false otherwise', () => {
    expect(isLowbitError(new LowbitError('E_ARG', 'x'))).toBe(true);
    // a second copy of the package (two versions in one node_modules) has its own class
    const other = Object.assign(new Error('y'), { name: 'LowbitError', code: 'E_IO' });
    expect(isLowbitError(other)).toBe(true);
    expect(isLowbitError(new Error('z'))).toBe(false);
    expect(isLowbitError(Object.assign(new Error('w'), { name: 'LowbitError' }))).toBe(false); // no code
    expect(isLowbitError({ name: 'LowbitError', code: 'E_IO' })).toBe(false); // not an Error
    expect(isLowbitError(null)).toBe(false);
  });
});
