// Bit-level properties of fixed-point values that the tensor-driven designs exploit: the precision a
// value needs in sign-magnitude (DPRed, Dynamic Stripes) and its effectual terms after signed-digit
// recoding (Laconic, Pragmatic / TCLe).

/** Bits of |v| up to its leading one, plus a sign bit when negative; 0 for 0. */
export function signMagnitudeBits(v: number): number {
  if (v === 0) return 0;
  const m = Math.abs(v);
  return 32 - Math.clz32(m) + (v < 0 ? 1 : 0);
}

/**
 * Non-zero digits of |v| in non-adjacent form (digits -1, 0, +1, no two adjacent non-zeros): the fewest
 * signed powers of two that sum to |v|. Laconic and Pragmatic Booth-recode values to cut their terms;
 * DNNsim uses its own run-based recoder table, NAF is the minimal recoding, so term counts here can be
 * lower than DNNsim's on some values (never higher than plain popcount).
 */
export function nafTerms(v: number): number {
  let n = Math.abs(v);
  let terms = 0;
  while (n !== 0) {
    if (n & 1) {
      terms++;
      // n ≡ 3 (mod 4): a run of ones; take -1 here and carry (…0111 = …1000 − 1)
      n = (n & 3) === 3 ? n + 1 : n - 1;
    }
    n = Math.floor(n / 2);
  }
  return terms;
}

/** Plain effectual bits of |v| (popcount), the non-Booth term count. */
export function popcountTerms(v: number): number {
  let n = Math.abs(v) >>> 0;
  let c = 0;
  while (n) {
    n &= n - 1;
    c++;
  }
  return c;
}

/** A table of nafTerms for |v| < 2^16 (every value a 16-bit design sees). */
export const NAF_TERMS: Uint8Array = (() => {
  const t = new Uint8Array(1 << 16);
  for (let i = 0; i < t.length; i++) t[i] = nafTerms(i);
  return t;
})();
