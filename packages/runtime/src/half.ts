// IEEE binary16 and bfloat16 conversions: defined once, in @lowbit/kernels (its half.ts), which the
// kernels' own f16 scale decoding is tested against; re-exported here for the runtime's users.
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '@lowbit/kernels';
