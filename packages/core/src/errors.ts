// The one error type of lowbit. Every package throws it (re-exported from each package's index);
// callers branch on `code`, which is stable across versions, and show `message`, which names the
// file, tensor or argument at fault.

export type LowbitErrorCode =
  | 'E_SHAPE' // lengths or dimensions that do not agree
  | 'E_DTYPE' // wrong typed-array type or tensor dtype
  | 'E_ARG' // an argument out of its allowed range (group size <= 0, bits out of range, ...)
  | 'E_FORMAT' // unknown number format or encoding
  | 'E_UNSUPPORTED' // valid input that lowbit does not handle (tensor type, architecture)
  | 'E_TRUNCATED' // a file or byte buffer that ends early
  | 'E_BAD_FILE' // a file that is not what it claims (wrong magic, bad header, bad metadata)
  | 'E_MISSING' // a tensor, key or file that should be there and is not
  | 'E_NAN' // NaN or Inf where finite values are required
  | 'E_RANGE' // an index out of range (token id, position, context length)
  | 'E_IO' // the file system refused
  | 'E_WASM'; // the WebAssembly module could not be loaded or instantiated

export class LowbitError extends Error {
  readonly code: LowbitErrorCode;
  constructor(code: LowbitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LowbitError';
    this.code = code;
  }
}

export function isLowbitError(e: unknown): e is LowbitError {
  return e instanceof Error && (e as { name?: string }).name === 'LowbitError' && typeof (e as LowbitError).code === 'string';
}
