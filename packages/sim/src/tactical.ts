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
import { LowbitError } from '@lowbit/core';

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
  /** For each kept line, the distinct original lines its weights come from (what the back end reads). */
  sources: Int32Array[];
  /** With `detail`: for each kept line, the original slot (line*width + lane) each slot processes (-1: idle). */
  sourceSlot?: Int32Array[];
}

/** Candidate tables of a tile's lanes, shared by the scheduler and its test oracle. */
export interface CandidateTables {
  nOff: number;
  /** Per (lane, offset): the line step of the candidate. */
  offT: Int32Array;
  /** Per (lane, offset): the wrapped lane of the candidate. */
  offL: Int32Array;
  /** revLane[revStart[dt*lanes + L] ..]: the lanes whose offset list reaches lane L at line step dt. */
  revStart: Int32Array;
  revLane: Int32Array;
}

export function candidateTables(lanes: number, options: TacticalOptions): CandidateTables {
  const offsets = searchOffsets(options);
  const nOff = offsets.length;
  const offT = new Int32Array(lanes * nOff);
  const offL = new Int32Array(lanes * nOff);
  for (let l = 0; l < lanes; l++) {
    offsets.forEach(([dt, dl], o) => {
      offT[l * nOff + o] = dt;
      offL[l * nOff + o] = (((l + dl) % lanes) + lanes) % lanes;
    });
  }
  const maxDt = Math.max(0, ...offsets.map(([dt]) => dt));
  const revStart = new Int32Array((maxDt + 1) * lanes + 1);
  const revLists: number[][] = Array.from({ length: (maxDt + 1) * lanes }, () => []);
  for (let l = 0; l < lanes; l++) for (let o = 0; o < nOff; o++) revLists[offT[l * nOff + o] * lanes + offL[l * nOff + o]].push(l);
  const revLane = Int32Array.from(revLists.flat());
  revLists.forEach((list, i) => (revStart[i + 1] = revStart[i] + list.length));
  return { nOff, offT, offL, revStart, revLane };
}

/** The distinct original lines the weights of kept line `t` (slots row0..row0+width) come from, in slot order. */
export function sourceLines(origin: Int32Array, row0: number, width: number, lineMark: Int32Array, t: number): Int32Array {
  const src: number[] = [];
  for (let s = 0; s < width; s++) {
    const o = origin[row0 + s];
    if (o < 0) continue;
    const line = (o / width) | 0;
    if (lineMark[line] !== t) {
      lineMark[line] = t;
      src.push(line);
    }
  }
  return Int32Array.from(src);
}

/**
 * Schedules one tile's weight stream. `nonzero[t*width + s]` (width = rows*lanes) marks effectual
 * weights of line t, slot s (row s/lanes, lane s%lanes); `T` lines.
 */
export function scheduleTile(nonzero: Uint8Array, T: number, rows: number, lanes: number, options: TacticalOptions = DEFAULT_TACTICAL, detail = false): TileSchedule {
  const width = rows * lanes;
  // lanes are bits of one 32-bit word in the scheduler's candidate buckets
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 32) throw new LowbitError('E_ARG', `Bit-Tactical tile: lanes must be an integer in 1..32, got ${lanes}`);
  if (nonzero.length !== T * width) throw new LowbitError('E_SHAPE', `Bit-Tactical tile: ${nonzero.length} slots for ${T} lines x ${rows} rows x ${lanes} lanes`);
  const { nOff, offT, offL, revStart, revLane } = candidateTables(lanes, options);
  const H = options.lookahead;
  // slot step from a row's lane 0 to the candidate slot of (lane, offset)
  const offSlot = new Int32Array(lanes * nOff);
  for (let i = 0; i < offSlot.length; i++) offSlot[i] = offT[i] * width + offL[i];
  const count = new Int32Array(lanes);
  const bucket = new Int32Array(nOff + 1);
  // origin[t*width+s]: original slot of the weight now at (t, s), or -1 for a zero
  const origin = new Int32Array(T * width);
  for (let i = 0; i < origin.length; i++) origin[i] = nonzero[i] ? i : -1;
  const sources: Int32Array[] = [];
  const sourceSlot: Int32Array[] = [];
  const kept: number[] = [];
  const lineMark = new Int32Array(T).fill(-1);
  let skip = 0;
  for (let t = 0; t < T; t++) {
    const row0 = t * width;
    let zeroLine = true;
    for (let s = 0; s < width && zeroLine; s++) if (origin[row0 + s] >= 0) zeroLine = false;
    if (zeroLine && skip < H) {
      skip++;
      continue;
    }
    skip = 0;
    for (let r = 0; r < rows; r++) {
      const base = row0 + r * lanes;
      let zeros = 0;
      for (let l = 0; l < lanes; l++) if (origin[base + l] < 0) zeros++;
      if (zeros === 0) continue;
      // candidate counts of the zero lanes; a promotion only ever removes candidates, and the slot it
      // empties is a candidate of at most one lane per offset (revLane), so counts update locally.
      // bucket[c] holds the lanes with c candidates as bits: the least-flexible lane (lowest count,
      // then lowest lane) is the lowest bit of the first non-empty bucket, with no scan of the lanes.
      const room = T - 1 - t;
      let any = 0;
      for (let l = 0; l < lanes; l++) {
        count[l] = -1;
        if (origin[base + l] >= 0) continue;
        let c = 0;
        for (let o = l * nOff, end = o + nOff; o < end; o++) if (offT[o] <= room && origin[base + offSlot[o]] >= 0) c++;
        count[l] = c;
        if (c > 0) {
          bucket[c] |= 1 << l;
          any = 1;
        }
      }
      while (any) {
        let c = 1;
        while (c <= nOff && bucket[c] === 0) c++;
        if (c > nOff) break;
        const best = 31 - Math.clz32(bucket[c] & -bucket[c]);
        bucket[c] &= ~(1 << best);
        let fromO = best * nOff;
        while (offT[fromO] > room || origin[base + offSlot[fromO]] < 0) fromO++;
        const from = base + offSlot[fromO];
        origin[base + best] = origin[from];
        origin[from] = -1;
        count[best] = -1;
        // every other zero lane that could reach `from` loses that candidate
        const dt = offT[fromO];
        const lane = offL[fromO];
        for (let k = revStart[dt * lanes + lane], end = revStart[dt * lanes + lane + 1]; k < end; k++) {
          const l = revLane[k];
          const n = count[l];
          if (n > 0) {
            bucket[n] &= ~(1 << l);
            count[l] = n - 1;
            if (n > 1) bucket[n - 1] |= 1 << l;
          }
        }
      }
    }
    kept.push(t);
    sources.push(sourceLines(origin, row0, width, lineMark, t));
    if (detail) sourceSlot.push(origin.slice(row0, row0 + width));
  }
  return { lines: kept.length, kept, sources, ...(detail ? { sourceSlot } : {}) };
}
