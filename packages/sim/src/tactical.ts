// Bit-Tactical's front end: a static scheduler that moves effectual (non-zero) weights into the slots
// of zero weights, so that a filter's weight stream takes fewer cycles. Per filter row of `lanes`
// weights, the zero at (time t, lane l) may take a non-zero weight from a small set of positions (the
// search shape) that the hardware's activation multiplexers can reach:
//   L shape: lookahead (t+1..t+H, l) and lookaside (t+1, l-1..l-D);
//   T shape (H = 2, D = 5 in the ASPLOS design): lookahead (t+1..t+H, l), diagonals (t+h, l-h) and
//            (t+h, l+h) for h = 1..H, and one more slot at (t+1, l-H-1).
// Lanes wrap around within a row. Least-flexible zero slots are filled first (the DNNsim scheduler's
// order), and an all-zero line is skipped, at most H in a row (the activation window can only move H
// lines ahead). Our implementation of the behaviour described in sim-targets.md §7.
import { LowbitError } from '@lowbit/kernels';

export interface TacticalOptions {
  /** Lookahead H: lines ahead a weight may come from. */
  lookahead: number;
  /** Lookaside D: lanes aside (L shape). */
  lookaside: number;
  shape: 'L' | 'T';
}

export const DEFAULT_TACTICAL: TacticalOptions = { lookahead: 2, lookaside: 5, shape: 'T' };

/** Offsets (dt, dl) a zero slot may take a weight from, in the order candidates are tried. */
export function searchOffsets(o: TacticalOptions): [number, number][] {
  const { lookahead: H, lookaside: D, shape } = o;
  if (!Number.isInteger(H) || H < 0 || H > 8 || !Number.isInteger(D) || D < 0 || D > 15) {
    throw new LowbitError('E_ARG', `Bit-Tactical lookahead must be 0..8 and lookaside 0..15, got ${H} and ${D}`);
  }
  const out: [number, number][] = [];
  for (let d = 1; d <= H; d++) out.push([d, 0]);
  if (shape === 'L') {
    if (H > 0) for (let h = 1; h <= D; h++) out.push([1, -h]);
  } else if (shape === 'T') {
    for (let h = 1; h <= H; h++) out.push([h, -h]);
    for (let h = 1; h <= H; h++) out.push([h, h]);
    if (H > 0) out.push([1, -H - 1]);
  } else throw new LowbitError('E_ARG', `unknown Bit-Tactical search shape "${String(shape)}" (L or T)`);
  return out;
}

export interface TileSchedule {
  /** Lines (cycles) after scheduling. */
  lines: number;
  /** The original line each kept line stands at. */
  kept: number[];
  /** For each kept line, the original line of the weight each slot processes (-1: idle slot). */
  sourceLine: Int32Array[];
  /** For each kept line, the original slot (line*width + lane) each slot processes (-1: idle). */
  sourceSlot: Int32Array[];
}

/**
 * Schedules one tile's weight stream. `nonzero[t*width + s]` (width = rows*lanes) marks effectual
 * weights of line t, slot s (row s/lanes, lane s%lanes); `T` lines.
 */
export function scheduleTile(nonzero: Uint8Array, T: number, rows: number, lanes: number, options: TacticalOptions = DEFAULT_TACTICAL): TileSchedule {
  const width = rows * lanes;
  if (nonzero.length !== T * width) throw new LowbitError('E_SHAPE', `Bit-Tactical tile: ${nonzero.length} slots for ${T} lines x ${rows} rows x ${lanes} lanes`);
  const offsets = searchOffsets(options);
  const H = options.lookahead;
  // origin[t*width+s]: original slot of the weight now at (t, s), or -1 for a zero
  const origin = new Int32Array(T * width);
  for (let i = 0; i < origin.length; i++) origin[i] = nonzero[i] ? i : -1;
  const sourceLine: Int32Array[] = [];
  const sourceSlot: Int32Array[] = [];
  const kept: number[] = [];
  const cand = new Int32Array(lanes * offsets.length);
  const count = new Int32Array(lanes);
  let skip = 0;
  for (let t = 0; t < T; t++) {
    let zeroLine = true;
    for (let s = 0; s < width && zeroLine; s++) if (origin[t * width + s] >= 0) zeroLine = false;
    if (zeroLine && skip < H) {
      skip++;
      continue;
    }
    skip = 0;
    for (let r = 0; r < rows; r++) {
      const base = r * lanes;
      for (;;) {
        let best = -1;
        let bestCount = Number.POSITIVE_INFINITY;
        for (let l = 0; l < lanes; l++) {
          count[l] = 0;
          if (origin[t * width + base + l] >= 0) continue;
          for (const [dt, dl] of offsets) {
            const tt = t + dt;
            if (tt >= T) continue;
            const ll = (((l + dl) % lanes) + lanes) % lanes;
            const at = tt * width + base + ll;
            if (origin[at] >= 0) cand[l * offsets.length + count[l]++] = at;
          }
          if (count[l] > 0 && count[l] < bestCount) [best, bestCount] = [l, count[l]];
        }
        if (best < 0) break;
        const from = cand[best * offsets.length];
        origin[t * width + base + best] = origin[from];
        origin[from] = -1;
      }
    }
    const lineOf = new Int32Array(width);
    const slotOf = new Int32Array(width);
    for (let s = 0; s < width; s++) {
      const o = origin[t * width + s];
      slotOf[s] = o;
      lineOf[s] = o < 0 ? -1 : Math.floor(o / width);
    }
    kept.push(t);
    sourceLine.push(lineOf);
    sourceSlot.push(slotOf);
  }
  return { lines: kept.length, kept, sourceLine, sourceSlot };
}
