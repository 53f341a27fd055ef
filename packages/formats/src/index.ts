// @lowbit/formats: Number formats and tensor encodings: INT-k, FP8/FP6/FP4, OCP MX, NF4, codebooks, BCQ, any-precision.
export {};
