import { describe, expect, it } from 'vitest';
import { LowbitError } from '../src/index.js';
import { seededRandom as rng } from '../src/random.js';
import { scheduleTile, searchOffsets, type TacticalOptions } from '../src/tactical.js';

/** Fewest lines any legal schedule reaches: every promotion choice (including leaving a zero slot idle) tried. */
function bruteForceLines(nonzero: Uint8Array, T: number, rows: number, lanes: number, o: TacticalOptions): number {
  const width = rows * lanes;
  const offsets = searchOffsets(o);
  let best = Number.POSITIVE_INFINITY;
  const line = (t: number, occ: Uint8Array, skip: number, used: number) => {
    if (used >= best) return;
    if (t === T) {
      best = used;
      return;
    }
    let zero = true;
    for (let s = 0; s < width; s++) if (occ[t * width + s]) zero = false;
    if (zero && skip < o.lookahead) return line(t + 1, occ, skip + 1, used);
    const slots: number[] = [];
    for (let s = 0; s < width; s++) if (!occ[t * width + s]) slots.push(s);
    const fill = (i: number, cur: Uint8Array) => {
      if (i === slots.length) return line(t + 1, cur, 0, used + 1);
      fill(i + 1, cur); // leave idle
      const s = slots[i];
      const r = Math.floor(s / lanes);
      const l = s % lanes;
      for (const [dt, dl] of offsets) {
        if (t + dt >= T) continue;
        const at = (t + dt) * width + r * lanes + ((((l + dl) % lanes) + lanes) % lanes);
        if (!cur[at]) continue;
        const next = cur.slice();
        next[at] = 0;
        next[t * width + s] = 1;
        fill(i + 1, next);
      }
    };
    fill(0, occ);
  };
  line(0, nonzero.slice(), 0, 0);
  return best;
}

/** Every non-zero weight processed exactly once, each moved by an offset the shape allows, no weight invented. */
function checkLegal(nonzero: Uint8Array, T: number, rows: number, lanes: number, o: TacticalOptions, sched: ReturnType<typeof scheduleTile>) {
  const width = rows * lanes;
  const allowed = new Set(searchOffsets(o).map(([dt, dl]) => `${dt},${(dl + lanes) % lanes}`));
  allowed.add('0,0');
  const seen = new Uint8Array(T * width);
  const keptLines: number[] = [];
  sched.sourceSlot!.forEach((slots, k) => {
    const own = sched.kept[k];
    keptLines.push(own);
    slots.forEach((orig, s) => {
      if (orig < 0) return;
      expect(nonzero[orig]).toBe(1);
      expect(seen[orig]).toBe(0);
      seen[orig] = 1;
      const t0 = Math.floor(orig / width);
      const s0 = orig % width;
      expect(Math.floor(s0 / lanes)).toBe(Math.floor(s / lanes)); // never crosses filter rows
      expect(t0).toBeGreaterThanOrEqual(own);
    });
  });
  for (let i = 0; i < nonzero.length; i++) expect(seen[i]).toBe(nonzero[i]);
  // moves relative to the kept line's position: legal offsets only
  sched.sourceSlot!.forEach((slots, k) => {
    const own = keptLines[k];
    slots.forEach((orig, s) => {
      if (orig < 0) return;
      const dt = Math.floor(orig / width) - own;
      const dl = ((orig % lanes) - (s % lanes) + lanes) % lanes;
      if (dt !== 0 || dl !== 0) expect(allowed.has(`${dt},${dl}`)).toBe(true);
    });
  });
}

describe('Bit-Tactical scheduler', () => {
  it('hand case: lookahead fills a zero from the next line, the emptied line is skipped', () => {
    // 1 row x 2 lanes, 3 lines: [1,0] [0,1] [1,1]; L shape H=1 D=0
    const nz = Uint8Array.from([1, 0, 0, 1, 1, 1]);
    const s = scheduleTile(nz, 3, 1, 2, { lookahead: 1, lookaside: 0, shape: 'L' }, true);
    expect(s.lines).toBe(2); // line 0 takes (1,1); line 1 is then all zero and skipped; line 2 kept
    expect(Array.from(s.sourceSlot![0])).toEqual([0, 3]);
    expect(s.sources.map((x) => Array.from(x))).toEqual([[0, 1], [2]]);
  });
  it('an all-zero stream costs one line per H+1 (the window moves at most H lines ahead)', () => {
    expect(scheduleTile(new Uint8Array(12 * 4), 12, 1, 4, { lookahead: 2, lookaside: 1, shape: 'L' }).lines).toBe(4);
    expect(scheduleTile(new Uint8Array(12 * 4), 12, 1, 4, { lookahead: 0, lookaside: 0, shape: 'L' }).lines).toBe(12);
  });
  it('is legal and never beats the brute-force optimum on tiny random tiles; equals it in most', () => {
    const rand = rng(1234);
    let equal = 0;
    let total = 0;
    for (const o of [
      { lookahead: 1, lookaside: 0, shape: 'L' }, { lookahead: 1, lookaside: 1, shape: 'L' },
      { lookahead: 2, lookaside: 1, shape: 'L' }, { lookahead: 2, lookaside: 1, shape: 'T' },
    ] as TacticalOptions[]) {
      for (let trial = 0; trial < 25; trial++) {
        const T = 4;
        const rows = 1 + (trial % 2);
        const lanes = 3;
        const density = 0.25 + 0.5 * rand();
        const nz = Uint8Array.from({ length: T * rows * lanes }, () => (rand() < density ? 1 : 0));
        const s = scheduleTile(nz, T, rows, lanes, o, true);
        checkLegal(nz, T, rows, lanes, o, s);
        const opt = bruteForceLines(nz, T, rows, lanes, o);
        expect(s.lines).toBeGreaterThanOrEqual(opt);
        expect(s.lines).toBeLessThanOrEqual(T);
        total++;
        if (s.lines === opt) equal++;
      }
    }
    // measured: 99 of these 100 tiles; the one miss is the greedy's order (least-flexible slot first)
    expect(equal / total).toBeGreaterThanOrEqual(0.95);
  });
  it('refuses an unknown shape or out-of-range lookahead', () => {
    expect(() => searchOffsets({ lookahead: 2, lookaside: 5, shape: 'X' as 'L' })).toThrow(LowbitError);
    expect(() => searchOffsets({ lookahead: 9, lookaside: 5, shape: 'L' })).toThrow(/lookahead must be 0\.\.8/);
  });
});
