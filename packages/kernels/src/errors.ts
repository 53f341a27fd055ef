// LowbitError lives in @lowbit/core (plain TypeScript, no WebAssembly) so that packages which need
// only the error type do not depend on the kernels; re-exported here, the same class, so every
// `import { LowbitError } from '@lowbit/kernels'` keeps working.
export { LowbitError, isLowbitError, type LowbitErrorCode } from '@lowbit/core';
