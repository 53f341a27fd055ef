/** A decoder's shape and hyper-parameters, as read from GGUF metadata or a Hugging Face config.json. */
export interface LlamaConfig {
  architecture: string;
  dim: number; // residual stream width
  hiddenDim: number; // SwiGLU inner width
  nLayers: number;
  nHeads: number;
  nKvHeads: number; // < nHeads: grouped-query attention
  headDim: number;
  vocabSize: number;
  contextLength: number; // longest sequence the model was trained for
  normEps: number;
  ropeTheta: number;
  ropeDim: number; // leading dims of each head that RoPE rotates
  /** GPT-2 differs from Llama in three places; absent = the Llama choice. */
  variant?: {
    norm: 'layer'; // LayerNorm with bias instead of RMSNorm
    positions: 'learned'; // a position-embedding table added to the token embedding instead of RoPE
    ffn: 'gelu'; // up → GELU → down instead of SwiGLU
  };
}
