import { describe, expect, it } from 'vitest';
import { LowbitError, seededRandom } from '../src/index.js';
import { scheduleTile, type TacticalOptions } from '../src/tactical.js';
import { scheduleTileReference } from './tactical-reference.js';

describe('Bit-Tactical scheduler, candidate-bucket fast path', () => {
  it('gives the previous implementation’s schedule, slot for slot, on random tiles', () => {
    const rand = seededRandom(2026);
    const shapes: TacticalOptions[] = [
      { lookahead: 2, lookaside: 5, shape: 'T' }, { lookahead: 1, lookaside: 0, shape: 'L' }, { lookahead: 2, lookaside: 1, shape: 'L' },
      { lookahead: 3, lookaside: 4, shape: 'L' }, { lookahead: 4, lookaside: 0, shape: 'T' }, { lookahead: 0, lookaside: 0, shape: 'L' },
    ];
    let tiles = 0;
    for (const o of shapes) {
      for (let trial = 0; trial < 12; trial++) {
        const T = 1 + Math.floor(rand() * 24);
        const rows = 1 + Math.floor(rand() * 6);
        // lanes up to 32: the top bit of the bucket word is exercised too; 2 lanes make offsets alias (wrap)
        const lanes = [2, 3, 16, 32][trial % 4];
        // sparse to dense, so whole zero lines (skipped) and full rows both occur
        const density = [0.05, 0.3, 0.6, 0.94][Math.floor(trial / 3) % 4];
        const nz = Uint8Array.from({ length: T * rows * lanes }, () => (rand() < density ? 1 : 0));
        const fast = scheduleTile(nz, T, rows, lanes, o, true);
        const ref = scheduleTileReference(nz, T, rows, lanes, o, true);
        expect(fast.lines).toBe(ref.lines);
        expect(fast.kept).toEqual(ref.kept);
        expect(fast.sources).toEqual(ref.sources);
        expect(fast.sourceSlot).toEqual(ref.sourceSlot);
        tiles++;
      }
    }
    expect(tiles).toBe(72);
  });
  it('refuses more lanes than one bucket word holds', () => {
    expect(() => scheduleTile(new Uint8Array(33), 1, 1, 33)).toThrow(LowbitError);
    expect(() => scheduleTile(new Uint8Array(33), 1, 1, 33)).toThrow(/lanes must be an integer in 1\.\.32/);
  });
});
