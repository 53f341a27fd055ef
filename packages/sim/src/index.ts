// @lowbit/sim: Accelerator and system models driven by precision profiles of real layers.
export {};
