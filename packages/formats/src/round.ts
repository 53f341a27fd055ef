/** Round half to even (IEEE roundTiesToEven), the rounding of every lowbit encoder. */
export function roundEven(v: number): number {
  const r = Math.round(v);
  // Math.round sends .5 up; a tie that landed on an odd integer goes back down.
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
