// @lowbit/solvers: numerical and combinatorial solvers, each usable alone.
export { LowbitError, isLowbitError } from '@lowbit/core';
export { kmeans1d, type KMeans1D } from './kmeans1d.js';
export { solveSpd, leastSquares } from './linear.js';
export {
  cholesky, choleskyInverse, inverseSpd, inverseCholeskyUpper, solveLower, solveLowerTransposed, solveUpper,
  choleskyBlocked, choleskyBlockedInPlace, ldlUpper, type CholeskyOptions, type BlockedCholeskyOptions, type MatmulKernels, type UpperLdl,
} from './cholesky.js';
export { symmetricEigen, pca, type SymmetricEigen, type Pca } from './eigen.js';
export {
  solveOneHotQuadratic, solveOneHotMinCost, oneHotValue, oneHotSizeRange, uniformChoice, greedyChoice,
  type OneHotQuadraticProblem, type OneHotSolveOptions, type OneHotSolution,
} from './iqp.js';
