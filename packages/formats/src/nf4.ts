/**
 * NormalFloat4 (QLoRA, Dettmers et al. 2023, appendix E): 16 quantiles of N(0, 1) rescaled to
 * [-1, 1], with an exact zero. Values as published in bitsandbytes' NF4 table.
 */
export const NF4_TABLE: Float32Array = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** Index of the nearest entry of a sorted codebook; ties go to the lower index. */
export function nearestIndex(table: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = table.length - 1;
  if (v <= table[lo]) return lo;
  if (v >= table[hi]) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (table[mid] <= v) lo = mid;
    else hi = mid;
  }
  return v - table[lo] <= table[hi] - v ? lo : hi;
}
