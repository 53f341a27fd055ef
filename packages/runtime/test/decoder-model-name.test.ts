// The model class is named for what it runs (every decoder-only architecture lowbit loads); the old
// name stays for existing code.
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { DecoderModel, LlamaModel, loadModel } from '../src/index.js';

describe('DecoderModel (formerly LlamaModel)', () => {
  it('loadModel returns a DecoderModel; LlamaModel is the same class and still types it', async () => {
    const m = await loadModel(fileURLToPath(defaultModelUrl));
    expect(m).toBeInstanceOf(DecoderModel);
    expect(LlamaModel).toBe(DecoderModel);
    const old: LlamaModel = m;
    expect(old.config.nLayers).toBe(5); // stories260K: 5 blocks
    m.free();
  });
});
