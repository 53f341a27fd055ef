// OCP Microscaling (MX) v1.0 constants shared by the MX encoder, the GEMV and validation (a leaf
// module: none of them imports another for these).
import type { MxFormatName } from './tensor-types.js';

/** Elements per shared E8M0 scale (spec section 5). */
export const MX_BLOCK = 32;
/** The E8M0 code for NaN (spec Table 2); every other code c is 2^(c − 127). */
export const E8M0_NAN = 0xff;
export const E8M0_BIAS = 127;

export const MX_FORMATS: MxFormatName[] = ['mxfp8_e4m3', 'mxfp8_e5m2', 'mxfp6_e3m2', 'mxfp6_e2m3', 'mxfp4', 'mxint8'];
