// One seeded generator for the whole package (Ginex traces, synthetic graphs, the tests' random
// tiles and tensors), so a seed names the same sequence everywhere.

/** mulberry32: small seeded generator so every trace, tile and tensor drawn from a seed is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
