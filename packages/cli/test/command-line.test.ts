// The command-line framework: options as data (parser, checks, --help and README from one spec),
// typo suggestions, negative numbers as values, range checks; and the #13 cases that used to end as
// "internal error" with a stack.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { QUANTIZE_DEFAULTS, quantizeModel } from '@lowbit/quantizers';
import { loadModel, perplexity } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { type OptionSpec, UsageError, closest, editDistance, helpMarkdown, helpText, parseCommandLine, parseNumber } from '../src/command.js';
import { commands } from '../src/commands/index.js';
import { ProgressBar, formatDuration } from '../src/progress.js';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-cmdline-'));

/** A command line as a shell would split it (single and double quotes; no expansions). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

describe('parseNumber: the one number parser, with ranges in the message', () => {
  it('accepts numbers in range and refuses the rest naming the option, the range and the text', () => {
    expect(parseNumber('256', '--ctx', { integer: true, min: 2 })).toBe(256);
    expect(parseNumber('-0.5', '--x', { min: -1, max: 1 })).toBe(-0.5);
    expect(parseNumber('1e-2', '--damp', { min: 0 })).toBe(0.01);
    const msg = (t: string, r: Parameters<typeof parseNumber>[2]) => {
      try {
        parseNumber(t, '--o', r);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(msg('-1', { integer: true, min: 2 })).toBe('--o must be an integer ≥ 2, got "-1"');
    expect(msg('2.5', { integer: true })).toBe('--o must be an integer, got "2.5"');
    expect(msg('0', { above: 0, max: 1 })).toBe('--o must be a number in (0, 1], got "0"');
    expect(msg('1.01', { above: 0, max: 1 })).toBe('--o must be a number in (0, 1], got "1.01"');
    expect(msg('65', { integer: true, min: 1, max: 64 })).toBe('--o must be an integer in 1..64, got "65"');
    // text Number() would take but a person did not mean as a number
    for (const t of ['', ' ', '0x10', '1e3x', 'NaN', 'Infinity', '1,5']) expect(msg(t, {})).toMatch(/must be a number/);
  });
});

describe('typo suggestions', () => {
  it('editDistance is Levenshtein distance', () => {
    expect(editDistance('grop', 'group')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('closest proposes only near names', () => {
    expect(closest('--grop', ['--group', '--out', '--method'])).toBe('--group');
    expect(closest('--frobnicate', ['--group', '--out'])).toBeUndefined();
  });

  it('a mistyped flag or command suggests the closest one (exit 2)', async () => {
    const f = await run(['quantize', '--grop', '32']);
    expect(f.code).toBe(2);
    expect(f.err).toMatch(/unknown option --grop; did you mean --group\?/);
    const c = await run(['quantise']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/unknown command "quantise"; did you mean "quantize"\?/);
    const v = await run(['quantize', '--method', 'gtpq']);
    expect(v.err).toMatch(/--method must be one of rtn, gptq; got "gtpq" \(did you mean gptq\?\)/);
  });
});

describe('parseCommandLine', () => {
  const spec = {
    ctx: { type: 'integer', default: 256, min: 2, description: 'c' },
    n: { type: 'integer', short: 'n', default: 64, min: 1, description: 'n' },
    out: { type: 'string', short: 'o', description: 'o' },
    sym: { type: 'boolean', description: 's' },
  } as const satisfies OptionSpec;

  it('values are typed, defaulted and checked; --a=b, -xVALUE, -- end the options', () => {
    const p = parseCommandLine(['m.gguf', '--ctx=64', '-n8', '-o', 'x', '--sym', '--', '--not-an-option'], spec);
    expect(p.values).toMatchObject({ ctx: 64, n: 8, out: 'x', sym: true, json: false, help: false });
    expect(p.positionals).toEqual(['m.gguf', '--not-an-option']);
    expect(parseCommandLine([], spec).values).toMatchObject({ ctx: 256, n: 64, out: undefined, sym: false });
  });

  it('a negative number after an option is its value, then refused by the range check (not Node\'s "ambiguous" message)', () => {
    expect(() => parseCommandLine(['--ctx', '-1'], spec)).toThrow(/^--ctx must be an integer ≥ 2, got "-1"$/);
    expect(() => parseCommandLine(['-n', '-1'], spec)).toThrow(/^-n must be an integer ≥ 1, got "-1"$/);
    expect(() => parseCommandLine(['--ctx', '-1.5e3'], spec)).toThrow(/got "-1\.5e3"/);
  });

  it('a missing value, a value given to a switch, an option where a value belongs: named usage errors', () => {
    expect(() => parseCommandLine(['--ctx'], spec)).toThrow(/^--ctx needs a value$/);
    expect(() => parseCommandLine(['--out', '--sym'], spec)).toThrow(/--out needs a value \(got the option --sym/);
    expect(() => parseCommandLine(['--sym=1'], spec)).toThrow(/--sym is a switch and takes no value/);
    expect(() => parseCommandLine(['-z'], spec)).toThrow(/unknown option -z/);
  });
});

describe('--help of every command (generated from its option spec)', () => {
  it('lists every option with its type, default and description, and at least one example that parses', () => {
    for (const c of commands) {
      const h = helpText(c);
      expect(h, c.name).toMatch(new RegExp(`^usage: lowbit ${c.name} `));
      for (const [name, d] of Object.entries(c.options)) {
        const flag = name.length === 1 ? new RegExp(`^ {2}-${name} `) : new RegExp(`^ {2}(-\\w, | {4})--${name}( |$)`);
        const line = h.split('\n').find((l) => flag.test(l));
        expect(line, `${c.name} --${name}`).toBeDefined();
        expect(line).toContain(d.description);
        const def = d.type === 'boolean' ? 'off' : (d.defaultText ?? (d.default === undefined ? '' : String(d.default)));
        expect(line).toContain(def);
        expect(d.description.length, `${c.name} --${name}: one line`).toBeLessThan(160);
      }
      expect(c.examples.length, c.name).toBeGreaterThan(0);
      for (const e of c.examples) {
        // the part of the line that runs this command (examples may chain commands with && or pipes)
        const words = shellWords(e.slice(e.indexOf(`lowbit ${c.name} `))).slice(2);
        const end = words.findIndex((w) => w === '&&' || w === '|');
        expect(() => parseCommandLine(end < 0 ? words : words.slice(0, end), c.options), e).not.toThrow();
      }
    }
  });

  it('required options are named when missing (exit 2), and --help works without them', async () => {
    const c = await run(['convert', '--to', 'q8_0']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--out is required/);
    expect((await run(['export-layer'])).err).toMatch(/--layer and --out are required/);
    expect((await run(['export-layer', '--help'])).code).toBe(0);
    expect(helpText(commands.find((x) => x.name === 'convert')!)).toMatch(/--to <type> +one of ↓ +required /);
  });

  it('lowbit <command> --help and lowbit help <command> print it and exit 0', async () => {
    const a = await run(['generate', '--help']);
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/--top-p <p> +number in \(0, 1\] +1 +nucleus sampling/);
    expect(a.out).toMatch(/examples:\n {2}lowbit generate/);
    expect((await run(['help', 'generate'])).out).toBe(a.out);
  });

  it('the README sections are the generated help (they cannot drift)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const c of commands) expect(readme, `README section for ${c.name} (npm run readme regenerates)`).toContain(helpMarkdown(c));
  });
});

describe('defaults shared by quantize, quantize-layer and the library (QUANTIZE_DEFAULTS)', () => {
  it('both commands take their defaults from QUANTIZE_DEFAULTS', () => {
    const byName = Object.fromEntries(commands.map((c) => [c.name, c.options as OptionSpec]));
    for (const name of ['quantize', 'quantize-layer']) {
      const o = byName[name] as Record<string, { default?: unknown }>;
      expect(o.method.default).toBe(QUANTIZE_DEFAULTS.method);
      expect(o.group.default).toBe(QUANTIZE_DEFAULTS.group);
      expect(o.damp.default).toBe(QUANTIZE_DEFAULTS.damp);
      expect(o.asym).toMatchObject({ type: 'boolean' }); // symmetric unless --asym, as QUANTIZE_DEFAULTS.symmetric
    }
    expect(QUANTIZE_DEFAULTS.symmetric).toBe(true);
    expect((byName.quantize as Record<string, { default?: unknown }>).format.default).toBe(`int${QUANTIZE_DEFAULTS.bits}`);
    expect((byName['quantize-layer'] as Record<string, { default?: unknown }>).bits.default).toBe(QUANTIZE_DEFAULTS.bits);
    expect((byName.quantize as Record<string, { default?: unknown }>)['calib-windows'].default).toBe(QUANTIZE_DEFAULTS.maxWindows);
  });
});

describe('the library quantizes as the CLI does when neither is told otherwise', () => {
  it('quantizeModel(model, { calibration }) and lowbit quantize give the same perplexity, bit for bit', async () => {
    const text = join(dir, 'valid-slice.txt');
    writeFileSync(text, readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(0, 8000));
    const cli = JSON.parse((await run(['quantize', '--text', text, '--json'])).out);
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
    const r = quantizeModel(model, { calibration });
    const ppl = perplexity(model, readFileSync(text, 'utf8'), { ctx: QUANTIZE_DEFAULTS.ctx }).perplexity;
    model.free();
    expect(cli).toMatchObject({ method: 'gptq', format: 'int4', group: 32, symmetric: true });
    expect(r.bitsPerWeight).toBe(cli.bits_per_weight);
    expect(ppl).toBe(cli.perplexity_after);
  }, 120_000);
});

describe('range checks on model commands (exit 2, a clear message)', () => {
  it('generate --top-p 2 / -1, -n -1, eval --ctx -1', async () => {
    for (const [argv, re] of [
      [['generate', '--top-p', '2'], /--top-p must be a number in \(0, 1\], got "2"/],
      [['generate', '--top-p', '-1'], /--top-p must be a number in \(0, 1\], got "-1"/],
      [['generate', '-n', '-1'], /-n must be an integer ≥ 1, got "-1"/],
      [['eval', '--ctx', '-1'], /--ctx must be an integer ≥ 2, got "-1"/],
      [['eval', '--threads', '0'], /--threads must be an integer in 1\.\.64, got "0"/],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toMatch(re);
      expect(r.err).not.toMatch(/ambiguous|internal error|context/);
    }
  });
});

describe('paths that are the wrong kind: LowbitError (exit 1), never "internal error"', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const sub = join(dir, 'a-dir.gguf');
  mkdirSync(sub, { recursive: true });
  const cases: [string[], RegExp][] = [
    [['inspect', dir], /is a directory; expected a \.gguf or \.safetensors file/],
    [['convert', dir, '--to', 'q8_0', '--out', join(dir, 'o.gguf')], /is a directory; expected a \.gguf file/],
    [['convert', '--to', 'q8_0', '--out', dir], /--out .*: is a directory; name the file to write/],
    [['convert', '--to', 'hf', '--out', file], /--out .*a-file: exists and is not a directory/],
    [['quantize', '--method', 'rtn', '--out', dir], /--out .*: is a directory; name the file to write/],
    [['quantize', '--method', 'rtn', '--out', sub], /--out .*a-dir\.gguf: is a directory/],
    [['quantize', '--method', 'rtn', '--out', join(dir, 'no-such-dir', 'm.gguf')], /the directory .*no-such-dir does not exist/],
  ];
  for (const [argv, re] of cases) {
    it(argv.slice(0, argv.length).join(' ').replaceAll(dir, '<tmp>'), async () => {
      const r = await run(argv);
      expect(r.err).not.toMatch(/internal error/);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(re);
      expect(r.err).toMatch(/\[E_(ARG|IO)\]\n$/);
    });
  }
});

describe('what the commands tell a person', () => {
  const text = join(dir, 'story.txt');
  writeFileSync(text, `${'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\n'.repeat(12)}`);

  it('eval names the model and the text and prints the perplexity ± its standard error', async () => {
    const r = await run(['eval', '--text', text, '--ctx', '32']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^model .*stories260K\.gguf\ntext {2}.*story\.txt\n/);
    expect(r.out).toMatch(/perplexity \d+\.\d{4} ± \d+\.\d{4} over \d+ tokens \(\d+ windows of 32; ± one standard error over windows\)/);
    const j = JSON.parse((await run(['eval', '--text', text, '--ctx', '32', '--json'])).out);
    expect(j.stderr).toBeGreaterThan(0);
    expect(j.stderr).toBeCloseTo(j.perplexity * j.nllStderr, 12);
  });

  it('quantize without --out says nothing was written', async () => {
    const r = await run(['quantize', '--method', 'rtn', '--format', 'int8', '--text', text, '--ctx', '32']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/nothing written: the quantized model lived in memory only/);
    expect(r.out).toMatch(/perplexity \d+\.\d{4} ± \d+\.\d{4} -> \d+\.\d{4} ± \d+\.\d{4}/);
  }, 120_000);
});

describe('study', () => {
  it('says where it wrote its plot, or that it wrote none', async () => {
    const svg = join(dir, 'plot.svg');
    const r = await run(['study', '--only', 'RTN mxint8', '--svg', svg]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`wrote the plot to ${svg}`);
    expect(readFileSync(svg, 'utf8').startsWith('<svg')).toBe(true);
  }, 120_000);
});

describe('progress bar: rate and time left on a terminal, nothing on a pipe', () => {
  it('shows count, rate and ETA from the task start; a new total or a count going back restarts the rate, a new label does not', () => {
    let now = 0;
    const out: string[] = [];
    const bar = new ProgressBar({ isTTY: true, write: (s: string) => out.push(s) }, () => now);
    expect(bar.line(1, 10, 'eval')).toBe(`eval ${'█'.repeat(3)}${'░'.repeat(27)} 1/10`); // no rate from one point
    now = 2000;
    // 4 more in 2 s: 2/s, 5 left: 2.5 s
    expect(bar.line(5, 10, 'eval')).toMatch(/ 5\/10 2\.0\/s, 3 s left$/);
    now = 2500;
    expect(bar.line(1, 4, 'gptq blk.0.attn_q')).toMatch(/ 1\/4$/);
    now = 62_500;
    expect(bar.line(2, 4, 'gptq blk.0.attn_k')).toMatch(/ 2\/4 60\.0 s each, 2 min 00 s left$/);
    now = 70_000;
    expect(bar.line(1, 4, 'eval')).toMatch(/ 1\/4$/); // same total, count went back: a new task
    bar.update(4, 4, 'gptq blk.0');
    expect(out.at(-1)).toBe('\r\x1b[2K'); // the finished bar is erased
    const pipe: string[] = [];
    new ProgressBar({ isTTY: false, write: (s: string) => pipe.push(s) }).update(1, 2, 'x');
    expect(pipe).toEqual([]);
    expect(formatDuration(3725)).toBe('1 h 02 min');
  });
});
