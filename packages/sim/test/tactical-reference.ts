// The Bit-Tactical scheduler as it stood before the candidate-bucket rewrite (lane scan for the
// least-flexible zero slot, slot addresses recomputed per candidate): kept as the oracle that the fast
// scheduler must reproduce slot for slot. The candidate tables and the source-line collection, which
// the rewrite did not change, come from tactical.ts. Test-only; not exported by the package.
import { LowbitError } from '@lowbit/core';
import { candidateTables, sourceLines, type TacticalOptions, type TileSchedule } from '../src/tactical.js';

export function scheduleTileReference(nonzero: Uint8Array, T: number, rows: number, lanes: number, options: TacticalOptions, detail = false): TileSchedule {
  const width = rows * lanes;
  if (nonzero.length !== T * width) throw new LowbitError('E_SHAPE', `Bit-Tactical tile: ${nonzero.length} slots for ${T} lines x ${rows} rows x ${lanes} lanes`);
  const { nOff, offT, offL, revStart, revLane } = candidateTables(lanes, options);
  const H = options.lookahead;
  const count = new Int32Array(lanes);
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
      // empties is a candidate of at most one lane per offset (revLane), so counts update locally
      for (let l = 0; l < lanes; l++) {
        count[l] = -1;
        if (origin[base + l] >= 0) continue;
        let c = 0;
        for (let o = l * nOff, end = o + nOff; o < end; o++) {
          const tt = t + offT[o];
          if (tt < T && origin[tt * width + r * lanes + offL[o]] >= 0) c++;
        }
        count[l] = c;
      }
      for (;;) {
        let best = -1;
        let bestCount = 0x7fffffff;
        for (let l = 0; l < lanes; l++) {
          const c = count[l];
          if (c > 0 && c < bestCount) {
            best = l;
            bestCount = c;
          }
        }
        if (best < 0) break;
        let from = -1;
        let fromO = -1;
        for (let o = best * nOff, end = o + nOff; o < end; o++) {
          const tt = t + offT[o];
          if (tt >= T) continue;
          const at = tt * width + r * lanes + offL[o];
          if (origin[at] >= 0) {
            from = at;
            fromO = o;
            break;
          }
        }
        origin[base + best] = origin[from];
        origin[from] = -1;
        count[best] = -1;
        // every other zero lane that could reach `from` loses that candidate
        const dt = offT[fromO];
        const lane = offL[fromO];
        for (let k = revStart[dt * lanes + lane], end = revStart[dt * lanes + lane + 1]; k < end; k++) {
          const l = revLane[k];
          if (count[l] > 0) count[l]--;
        }
      }
    }
    kept.push(t);
    sources.push(sourceLines(origin, row0, width, lineMark, t));
    if (detail) sourceSlot.push(origin.slice(row0, row0 + width));
  }
  return { lines: kept.length, kept, sources, ...(detail ? { sourceSlot } : {}) };
}
