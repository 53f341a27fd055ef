// @lowbit/runtime: Load GGUF/safetensors models, tokenize, run Llama-family inference on packed weights, measure perplexity.
export {};
