// Locations of the embedded model and texts. URLs (not paths) so the same code works in Node
// (fileURLToPath) and under bundlers such as Vite, which rewrite `new URL(..., import.meta.url)`.

/** stories260K: Llama architecture, dim 64, 5 layers, 8 heads / 4 KV heads, FFN 172, vocab 512, F32. */
export const defaultModelUrl: URL = new URL('../files/stories260K.gguf', import.meta.url);
/** 19 TinyStories validation stories, one per line: report quality on this. */
export const validTextUrl: URL = new URL('../files/TinyStories-valid.txt', import.meta.url);
/** 197 KB from the TinyStories training split: calibrate on this, never on the validation text. */
export const calibrationTextUrl: URL = new URL('../files/TinyStories-train-excerpt.txt', import.meta.url);

export const defaultModelSha256 = '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d';
