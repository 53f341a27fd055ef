// What the kernel scripts (bench-*.mjs) share: the build to run, a seeded xorshift, CPU time.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20 ships relaxed SIMD behind a flag
const { instantiate } = await import('../dist/index-node.js');

/** The kernels instantiated from build/lowbit-<variant>.wasm (the last build, not the installed package). */
export function loadBuild(variant) {
  return instantiate(new WebAssembly.Module(readFileSync(new URL(`../build/lowbit-${variant}.wasm`, import.meta.url))), variant);
}

/** 32-bit xorshift from a fixed seed: the same "random" weights in every run. */
export function xorshift32(seed = 12345) {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** CPU milliseconds (user + system) of f(): steadier than wall time on a shared machine. */
export function cpu(f) {
  const t = process.cpuUsage();
  f();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1000;
}
