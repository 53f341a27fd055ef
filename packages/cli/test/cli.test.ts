import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

describe('lowbit CLI', () => {
  it('eval --json prints one object with model, tokens, ctx, perplexity, seconds; progress as events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-cli-'));
    const text = join(dir, 'story.txt');
    writeFileSync(text, 'Once upon a time, there was a little girl named Lily.\n\nShe loved to play outside in the park.\n');
    const r = await run(['eval', '--text', text, '--ctx', '16', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ ctx: 16, model: expect.stringContaining('stories260K.gguf') });
    expect(j.tokens).toBeGreaterThan(10);
    expect(j.perplexity).toBeGreaterThan(1);
    expect(typeof j.seconds).toBe('number');
    expect(r.events.filter((e) => e.type === 'progress').length).toBeGreaterThan(0);
  });

  it('--threads 2 (worker-thread kernel pool) gives the same perplexity and lets the process exit', async () => {
    const a = JSON.parse((await run(['eval', '--ctx', '64', '--json'])).out);
    const b = JSON.parse((await run(['eval', '--ctx', '64', '--threads', '2', '--json'])).out);
    // rows are split over threads, each row's sum is computed as before: identical results
    expect(b.perplexity).toBe(a.perplexity);
    expect(b.threads).toBe(2);
  });

  it('generate streams the greedy story', async () => {
    const r = await run(['generate', '--prompt', 'Once upon a time', '-n', '20', '--temp', '0']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Once upon a time, there was a little girl named Lily/);
    expect(r.events.filter((e) => e.type === 'token').length).toBe(20);
  });

  it('generate says so when the model context ends the story before -n tokens', async () => {
    const r = await run(['generate', '--prompt', 'Once upon a time', '-n', '3000', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.stopReason).toBe('context');
    expect(r.err).toMatch(/stopped after \d+ of 3000 tokens: the model's context of 2048 tokens is full/);
    expect(r.events.some((e) => e.type === 'message' && /context/.test(e.text ?? ''))).toBe(true);
  }, 60_000);

  it('inspect --json lists tensors with types and bits per weight', async () => {
    const r = await run(['inspect', '--json']);
    const j = JSON.parse(r.out);
    expect(j.tensors).toHaveLength(48);
    expect(j.tensors[0]).toMatchObject({ name: 'token_embd.weight', type: 'F32', bitsPerWeight: 32 });
    expect(j.metadata['general.architecture']).toBe('llama');
  });

  it('convert --to hf gives a directory eval runs (SentencePiece tokenizer.json); inspect reads its safetensors; without tokenizer.json it is a named error', async () => {
    const { rmSync } = await import('node:fs');
    const dir = join(mkdtempSync(join(tmpdir(), 'lowbit-cli-')), 'hf');
    expect((await run(['convert', '--to', 'hf', '--out', dir])).code).toBe(0);
    const j = JSON.parse((await run(['inspect', join(dir, 'model.safetensors'), '--json'])).out);
    expect(j.tensors).toHaveLength(48);
    const ok = JSON.parse((await run(['eval', dir, '--json'])).out);
    expect(ok.perplexity).toBeCloseTo(5.5873, 4); // the GGUF's figure
    rmSync(join(dir, 'tokenizer.json'));
    const r = await run(['eval', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/tokenizer\.json: cannot read/);
  });

  it('convert writes a Q8_0 GGUF that eval runs; bad --to is a usage error', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'lowbit-cli-')), 'm.gguf');
    const c = await run(['convert', '--to', 'q8_0', '--out', out, '--json']);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.out)).toMatchObject({ to: 'Q8_0', output: out });
    const types = JSON.parse((await run(['inspect', out, '--json'])).out).tensors.map((t: { type: string }) => t.type);
    expect(types).toContain('Q8_0');
    expect(JSON.parse((await run(['eval', out, '--ctx', '64', '--json'])).out).perplexity).toBeGreaterThan(1);
    expect((await run(['convert', '--to', 'q9_0', '--out', out])).code).toBe(2); // no such type
  });

  it('bad input: LowbitError message and exit code 1; bad usage: exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-cli-'));
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, 'not a model at all');
    const r = await run(['eval', bad]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.gguf: not a GGUF file .*\[E_BAD_FILE\]/);
    expect(r.out).toBe('');
    expect((await run(['eval', '--ctx', '99999'])).err).toMatch(/ctx 99999 is outside/);
    expect((await run(['eval', '--nope'])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
  });
});
