// Bit-level properties of fixed-point values that the tensor-driven designs exploit: the precision a
// dynamic-precision detector sees in a value (DPRed, Dynamic Stripes, TCLp, Loom) and its effectual
// terms after signed-digit recoding (Laconic, Pragmatic / TCLe).

/** A tensor is signed when it holds a negative value (DNNsim @4748a60 base/src/Array.cpp: min < 0). */
export function isSignedTensor(codes: ArrayLike<number>): boolean {
  for (let i = 0; i < codes.length; i++) if (codes[i] < 0) return true;
  return false;
}

/**
 * The precision DNNsim's dynamic-precision detectors give a value (@4748a60 core/src/ShapeShifter.cpp and
 * Loom.cpp, process_pe): in an unsigned tensor, the bits up to the leading one (at least 1); in a signed
 * tensor, a negative value is bit-inverted first (-v - 1) and a sign bit is added, which is the value's
 * two's-complement width (at least 2). A group then needs the widest of its values, and that width
 * decodes every value of the group, which the older sign-magnitude rule (signMagnitudeBits: +7 and -1
 * both 3 bits) did not guarantee.
 */
export function detectedBits(v: number, signed: boolean): number {
  const x = v < 0 ? -v - 1 : v;
  return (x === 0 ? 1 : 32 - Math.clz32(x)) + (signed ? 1 : 0);
}

/**
 * Bits of |v| up to its leading one, plus a sign bit when negative; 0 for 0. DNNsim's older rule
 * (@50240e9 DynamicStripes); the models use detectedBits.
 */
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
