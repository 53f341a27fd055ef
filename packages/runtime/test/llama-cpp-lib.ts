// llama.cpp through node-llama-cpp's prebuilt CPU binary (never built, nothing downloaded), for the
// cross-check tests of every package. Where the binary cannot load, the checks skip with the reason
// printed once.
export type LlamaCpp = Awaited<ReturnType<(typeof import('node-llama-cpp'))['getLlama']>>;

export async function openLlamaCpp(what: string): Promise<{ llama?: LlamaCpp; skipReason: string }> {
  try {
    const { getLlama } = await import('node-llama-cpp');
    return { llama: await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false }), skipReason: '' };
  } catch (e) {
    const skipReason = `node-llama-cpp cannot load its prebuilt llama.cpp here: ${(e as Error).message}`;
    console.warn(`SKIPPED ${what}: ${skipReason}`);
    return { skipReason };
  }
}
