// @lowbit/cli: The lowbit command: eval, generate, inspect, formats, quantize, allocate, sim.
export {};
