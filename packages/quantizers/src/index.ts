// @lowbit/quantizers: Post-training quantizers: RTN, selective RTN, GPTQ, SmoothQuant, AdaDim, clipping search.
export {};
