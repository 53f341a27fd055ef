export { LowbitError, isLowbitError, type LowbitErrorCode } from './errors.js';
