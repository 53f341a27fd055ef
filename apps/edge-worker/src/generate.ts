// POST /generate: greedy or sampled generation of a GGUF model with @lowbit/runtime's universal
// entry (no Node built-ins), its kernels resolved through the `workerd` export condition.
import { type ByteSource, type DecoderModel, generate, loadModel } from '@lowbit/runtime';

export interface GenerateRequest {
  prompt: string;
  n: number;
  temperature: number;
  topP: number;
  seed: number;
}

/** Longest prompt accepted, in characters: the embedded model's context is 512 tokens anyway. */
export const MAX_PROMPT_CHARS = 8192;
/** Highest sampling temperature accepted (beyond it the output is noise). */
export const MAX_TEMPERATURE = 10;

/** A request the worker refuses: a 400 naming the field. */
export class BadRequest extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the JSON body of POST /generate; `maxSteps` is the model's context length. */
export function parseGenerateRequest(body: unknown, maxSteps: number): GenerateRequest {
  if (!isObject(body)) throw new BadRequest('body', 'body: expected a JSON object {prompt, n, temperature?, top_p?, seed?}');
  const { prompt, n, temperature = 0, top_p: topP = 0, seed = 0 } = body;
  if (typeof prompt !== 'string') throw new BadRequest('prompt', `prompt: expected a string, got ${JSON.stringify(prompt) ?? 'nothing'}`);
  if (prompt.length > MAX_PROMPT_CHARS) throw new BadRequest('prompt', `prompt: ${prompt.length} characters, at most ${MAX_PROMPT_CHARS}`);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > maxSteps) {
    throw new BadRequest('n', `n: expected an integer from 1 to ${maxSteps} (tokens to generate), got ${JSON.stringify(n) ?? 'nothing'}`);
  }
  if (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= MAX_TEMPERATURE)) {
    throw new BadRequest('temperature', `temperature: expected a number from 0 (greedy) to ${MAX_TEMPERATURE}, got ${JSON.stringify(temperature)}`);
  }
  if (typeof topP !== 'number' || !(topP >= 0 && topP <= 1)) {
    throw new BadRequest('top_p', `top_p: expected a number from 0 to 1 (0 or 1: no nucleus cut), got ${JSON.stringify(topP)}`);
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new BadRequest('seed', `seed: expected a non-negative integer, got ${JSON.stringify(seed)}`);
  }
  return { prompt, n, temperature, topP, seed };
}

let loading: Promise<DecoderModel> | undefined;

/**
 * The model, loaded once per isolate (a Worker isolate serves many requests; the weights stay in
 * the kernels' WebAssembly memory between them). A failed load is retried by the next request.
 */
export function model(open: () => Promise<ByteSource>): Promise<DecoderModel> {
  loading ??= (async () => {
    const source = await open();
    try {
      return await loadModel(source);
    } finally {
      // the weights are in WebAssembly memory now: drop the bytes (or the range reader's chunk)
      await source.close();
    }
  })().catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

export interface GenerateReply {
  text: string;
  tokens: number[];
  prompt_tokens: number[];
  stop_reason: 'steps' | 'eos' | 'context';
  /**
   * Decode tokens per second as the worker's clock saw it; null where the clock did not advance
   * (deployed Workers advance performance.now() only at I/O, so a request without I/O reads 0 s).
   */
  tokens_per_second: number | null;
  model: string;
}

export function runGenerate(m: DecoderModel, req: GenerateRequest): GenerateReply {
  const ids = m.tokenizer.encode(req.prompt, { bos: true });
  if (ids.length >= m.config.contextLength) {
    throw new BadRequest('prompt', `prompt: ${ids.length} tokens leave no room in the model's context of ${m.config.contextLength}`);
  }
  const r = generate(m, req.prompt, { steps: req.n, temperature: req.temperature, topP: req.topP, seed: req.seed });
  return {
    text: r.text,
    tokens: r.tokens,
    prompt_tokens: r.prompt,
    stop_reason: r.stopReason,
    // as `lowbit generate` reports it: generated tokens over the time after the prompt's forward pass
    tokens_per_second: r.decodeSeconds > 0 && r.tokens.length > 0 ? r.tokens.length / r.decodeSeconds : null,
    model: m.name,
  };
}
