// @lowbit/solvers: Numerical and combinatorial solvers: Cholesky, 1-D k-means, PCA, least squares, integer programs (HiGHS).
export {};
