import { LowbitError } from './errors.js';

// Slack after every block: SIMD kernels read whole 16-byte vectors, so the last (partial) vector of
// a buffer may read past its end. The slack keeps those reads inside memory the heap owns.
const SLACK = 64;
const ALIGN = 16;
const PAGE = 65536;
const MAX_BYTES = 4 * 1024 * 1024 * 1024 - PAGE; // wasm32 limit

interface FreeBlock {
  ptr: number;
  size: number;
}

/**
 * First-fit allocator over a WebAssembly.Memory above the module's static data. It lives in JS so
 * the kernels stay free of any runtime; freed neighbours coalesce so the 10,000-call pattern of
 * alloc/compute/free returns memory to exactly where it started.
 */
export class WasmHeap {
  private top: number;
  private readonly free_: FreeBlock[] = [];
  private readonly sizes = new Map<number, number>();

  constructor(
    readonly memory: WebAssembly.Memory,
    base: number,
  ) {
    this.top = align(base);
  }

  /** Bytes handed out and not yet freed. */
  get liveBytes(): number {
    let s = 0;
    for (const v of this.sizes.values()) s += v;
    return s;
  }

  /** High-water mark: memory above it has never been used. */
  get highWater(): number {
    return this.top;
  }

  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0) throw new LowbitError('E_ARG', `cannot allocate ${bytes} bytes`);
    const size = align(bytes + SLACK);
    for (let i = 0; i < this.free_.length; i++) {
      const b = this.free_[i];
      if (b.size >= size) {
        const ptr = b.ptr;
        if (b.size === size) this.free_.splice(i, 1);
        else {
          b.ptr += size;
          b.size -= size;
        }
        this.sizes.set(ptr, size);
        return ptr;
      }
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > MAX_BYTES) {
      throw new LowbitError('E_ARG', `WebAssembly memory is limited to 4 GiB; ${bytes} more bytes do not fit (in use: ${this.liveBytes})`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch (e) {
        throw new LowbitError('E_WASM', `could not grow WebAssembly memory to ${end} bytes`, { cause: e });
      }
    }
    this.top = end;
    this.sizes.set(ptr, size);
    return ptr;
  }

  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    if (ptr + size === this.top) {
      this.top = ptr;
      // The block below the top may now be free as well.
      const last = this.free_[this.free_.length - 1];
      if (last && last.ptr + last.size === this.top) {
        this.top = last.ptr;
        this.free_.pop();
      }
      return;
    }
    let i = 0;
    while (i < this.free_.length && this.free_[i].ptr < ptr) i++;
    this.free_.splice(i, 0, { ptr, size });
    const next = this.free_[i + 1];
    if (next && ptr + size === next.ptr) {
      this.free_[i].size += next.size;
      this.free_.splice(i + 1, 1);
    }
    const prev = this.free_[i - 1];
    if (prev && prev.ptr + prev.size === ptr) {
      prev.size += this.free_[i].size;
      this.free_.splice(i, 1);
    }
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
