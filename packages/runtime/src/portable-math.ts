// exp and log of f64 from +, −, ×, ÷ alone, so that a perplexity is the same number in every
// JavaScript engine. Math.exp and Math.log are left to each engine's libm: Chromium 156's V8 and Node
// 20's differ by an ulp on ~10% of arguments (200,000 random x in (0, 10]: exp 20,080, log 13,149
// values differ; x ** 0.5 none), which moved a perplexity the demo computes in the browser and in
// Node by one ulp. IEEE-754 basic operations round the same everywhere, and these use nothing else.
// Accuracy: within 1 ulp of Math.exp / Math.log on the tested ranges (test/portable-math.test.ts).

// ln 2 split so that k·LN2_HI is exact for |k| < 2^11 (LN2_HI has 21 trailing zero bits).
const LN2_HI = 0.6931471803691238; // 0x3FE62E42FEE00000
const LN2_LO = 1.9082149292705877e-10; // 0x3DEA39EF35793C76
const INV_LN2 = Math.LOG2E; // a constant, the same in every engine

// 2^k for k = −1074 … 1023, built by exact halvings and doublings of 1.
const POW2_MIN = -1074;
const POW2 = (() => {
  const t = new Float64Array(1023 - POW2_MIN + 1);
  t[-POW2_MIN] = 1;
  for (let k = 1; k <= 1023; k++) t[k - POW2_MIN] = t[k - 1 - POW2_MIN] * 2;
  for (let k = -1; k >= POW2_MIN; k--) t[k - POW2_MIN] = t[k + 1 - POW2_MIN] / 2;
  return t;
})();

// 1/n! for n = 2 … 13: Taylor terms of e^r − 1 − r beyond r, |r| ≤ ln2/2 (the 14th term is < 2^-60);
// unrolled below (a loop over them took twice the time of Math.exp).
const [F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13] = Array.from({ length: 12 }, (_, i) => {
  let f = 1;
  for (let n = 2; n <= i + 2; n++) f *= n;
  return 1 / f;
});

/** e^x, the same in every engine. */
export function exp64(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x > 709.782712893384) return Number.POSITIVE_INFINITY;
  if (x < -745.1332191019412) return 0;
  const k = Math.round(x * INV_LN2);
  const r = x - k * LN2_HI - k * LN2_LO;
  const p = F2 + r * (F3 + r * (F4 + r * (F5 + r * (F6 + r * (F7 + r * (F8 + r * (F9 + r * (F10 + r * (F11 + r * (F12 + r * F13))))))))));
  const e = 1 + (r + r * r * p);
  // 2^k in two steps where it is subnormal or out of range, so e·2^k rounds once at most near the edge
  if (k > 1023) return e * POW2[1023 - POW2_MIN] * 2; // k = 1024
  if (k < -1022) return e * POW2[k + 60 - POW2_MIN] * POW2[-60 - POW2_MIN];
  return e * POW2[k - POW2_MIN];
}

const SQRT2 = Math.SQRT2;
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const HI = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 1 : 0; // the word holding the exponent

const [L3, L5, L7, L9, L11, L13, L15, L17, L19, L21, L23] = Array.from({ length: 11 }, (_, j) => 1 / (2 * j + 3));

/** Natural logarithm, the same in every engine. */
export function log64(x: number): number {
  if (Number.isNaN(x) || x < 0) return Number.NaN;
  if (x === 0) return Number.NEGATIVE_INFINITY;
  if (x === Number.POSITIVE_INFINITY) return x;
  let e = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984; // 2^54: subnormals to normals
    e = -54;
  }
  F64[0] = x;
  e += ((U32[HI] >>> 20) & 0x7ff) - 1023;
  U32[HI] = (U32[HI] & 0x800fffff) | (1023 << 20); // m in [1, 2)
  let m = F64[0];
  if (m > SQRT2) {
    m /= 2;
    e++;
  }
  // log m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716: Σ 2·s^(2j+1)/(2j+1) to j = 11
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  const q = L3 + s2 * (L5 + s2 * (L7 + s2 * (L9 + s2 * (L11 + s2 * (L13 + s2 * (L15 + s2 * (L17 + s2 * (L19 + s2 * (L21 + s2 * L23)))))))));
  const f = m - 1;
  // 2s = f − s·f: the leading term kept exact-ish, the series on s·s2
  const lm = f - s * f + 2 * s * s2 * q;
  return e * LN2_HI + (lm + e * LN2_LO);
}
