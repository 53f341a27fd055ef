// What a lowbit subcommand is: its arguments and options as data (type, default, range, one-line
// description), examples, and a `run` that calls one package API. The parser, the checks and the
// --help text all come from that data, so the help cannot drift from what the command accepts.
// Commands never print JSON themselves: they return a result, which the framework prints with
// --json, and call `ctx.print` for humans.

interface OptionBase {
  /** One letter: `-n 64` as well as `--n 64`. */
  short?: string;
  /** One line for --help and the README table. */
  description: string;
  /** The value's name in the help (`--text <file>`); default `value`/`n`/`x`. */
  placeholder?: string;
  /** What the default is when it is not a constant (`the embedded model`, `time of day`). */
  defaultText?: string;
}

export interface BooleanOption extends OptionBase {
  type: 'boolean';
}

export interface StringOption extends OptionBase {
  type: 'string';
  default?: string;
  /** The only values accepted. */
  choices?: readonly string[];
  /** Choices match in any case (`--to q8_0` is `Q8_0`); the value is the choice as spelled here. */
  ignoreCase?: boolean;
  /** The command cannot run without it (checked after --help, so help always works). */
  required?: boolean;
}

export interface NumberOption extends OptionBase, NumberRange {
  type: 'integer' | 'number';
  default?: number;
}

export type OptionDef = BooleanOption | StringOption | NumberOption;
export type OptionSpec = Record<string, OptionDef>;

/** The parsed value of one option: numbers are numbers, defaults applied, `undefined` where neither given nor defaulted. */
type ValueOf<D> = D extends BooleanOption
  ? boolean
  : D extends NumberOption
    ? D extends { default: number } ? number : number | undefined
    : D extends { choices: readonly (infer C)[] }
      ? D extends { default: string } | { required: true } ? C : C | undefined
      : D extends { default: string } | { required: true } ? string : string | undefined;

export type OptionValues<O extends OptionSpec> = { [K in keyof O]: ValueOf<O[K]> };

export interface CliEvent {
  type: 'progress' | 'token' | 'message';
  command: string;
  done?: number;
  total?: number;
  label?: string;
  text?: string;
}

export interface CommandContext<O extends OptionSpec = OptionSpec> {
  command: string;
  values: OptionValues<O>;
  positionals: string[];
  json: boolean;
  /** Human output (suppressed under --json). */
  print(text: string): void;
  /** Streamed human output without a newline (generate). */
  write(text: string): void;
  /** A note on stderr (also under --json) and a 'message' event: something the user should know. */
  warn(text: string): void;
  /** Progress: a bar with rate and ETA on a TTY, an event for library callers. */
  progress(done: number, total: number, label?: string): void;
  emit(event: Omit<CliEvent, 'command'>): void;
}

export interface ArgumentDef {
  name: string;
  description: string;
  /** Shown as `[name]` and may be left out. */
  optional?: boolean;
}

export interface Command<O extends OptionSpec = OptionSpec> {
  name: string;
  summary: string;
  arguments?: ArgumentDef[];
  options: O;
  /** Complete command lines, each runnable as written (at least one). */
  examples: string[];
  run(ctx: CommandContext<O>): Promise<unknown>;
}

/** Declares a command with its option types inferred from the spec (values typed in `run`). */
export function defineCommand<const O extends OptionSpec>(c: Command<O>): Command {
  return c as unknown as Command;
}

/** Bad command line (exit code 2), as opposed to bad input files (LowbitError, exit code 1). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Options every command takes; the framework handles them. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean', description: 'print one JSON object on stdout instead of text' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
} as const satisfies OptionSpec;

export interface NumberRange {
  /** Integers only (type 'integer'). */
  integer?: boolean;
  /** Smallest value accepted. */
  min?: number;
  /** Values must be strictly greater than this (`top-p` > 0). */
  above?: number;
  /** Largest value accepted. */
  max?: number;
}

/** The range in words: "an integer ≥ 2", "a number in (0, 1]", "an integer in 1..64". */
export function describeRange(r: NumberRange): string {
  const what = r.integer ? 'an integer' : 'a number';
  const lo = r.min ?? r.above;
  if (lo !== undefined && r.max !== undefined) {
    return r.integer && r.min !== undefined ? `${what} in ${r.min}..${r.max}` : `${what} in ${r.min !== undefined ? '[' : '('}${lo}, ${r.max}]`;
  }
  if (r.min !== undefined) return `${what} ≥ ${r.min}`;
  if (r.above !== undefined) return `${what} > ${r.above}`;
  if (r.max !== undefined) return `${what} ≤ ${r.max}`;
  return what;
}

/**
 * The one number parser of the command line: `text` as a finite number in range, or a UsageError
 * naming `what` (e.g. "--ctx"), the range and the text. Empty text, hex, "1e3x" and NaN are refused.
 */
export function parseNumber(text: string, what: string, r: NumberRange = {}): number {
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text.trim()) ? Number(text) : Number.NaN;
  const ok = Number.isFinite(n) && (!r.integer || Number.isInteger(n)) && (r.min === undefined || n >= r.min) && (r.above === undefined || n > r.above) && (r.max === undefined || n <= r.max);
  if (!ok) throw new UsageError(`${what} must be ${describeRange(r)}, got "${text}"`);
  return n;
}

/** Levenshtein distance (insertions, deletions, substitutions each cost 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The candidate closest to `word`, if it is close enough to be a likely typo (distance ≤ max(2, 40% of the length)). */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.ceil(word.length * 0.4)) ? best : undefined;
}

/** A number written as a value (`-1`, `-0.5`, `-1e3`): a value, not an option, after an option that takes one. */
const NUMBER_LIKE = /^-(\d|\.\d)/;

/**
 * Parses a command's arguments against its spec (plus --json and --help): `--name value`,
 * `--name=value`, `-x value`, `-xvalue`, `--` ends the options. Values that look like negative
 * numbers are values (`--ctx -1` is then refused by the range check with the range in words).
 * Every value is checked (numbers, ranges, choices) and defaults applied.
 */
export function parseCommandLine<O extends OptionSpec>(args: string[], spec: O): { values: OptionValues<O> & { json: boolean; help: boolean }; positionals: string[] } {
  const all: OptionSpec = { ...spec, ...COMMON_OPTIONS };
  const byShort = new Map(Object.entries(all).filter(([, d]) => d.short).map(([name, d]) => [d.short as string, name]));
  const raw = new Map<string, string | true>();
  const positionals: string[] = [];
  const unknown = (flag: string) => {
    const names = [...Object.keys(all).map((n) => `--${n}`), ...[...byShort.keys()].map((s) => `-${s}`)];
    const guess = closest(flag, names);
    return new UsageError(`unknown option ${flag}${guess ? `; did you mean ${guess}?` : ''}`);
  };
  for (let i = 0; i < args.length; i++) {
    const tok = args[i];
    if (tok === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    let flag: string;
    if (tok.startsWith('--')) {
      const eq = tok.indexOf('=');
      name = eq < 0 ? tok.slice(2) : tok.slice(2, eq);
      inline = eq < 0 ? undefined : tok.slice(eq + 1);
      flag = `--${name}`;
      if (!Object.hasOwn(all, name)) throw unknown(flag);
      flag = flagName(name);
    } else if (tok.startsWith('-') && tok.length > 1 && !NUMBER_LIKE.test(tok)) {
      flag = tok.slice(0, 2);
      const long = byShort.get(tok[1]);
      if (long === undefined) throw unknown(flag);
      name = long;
      inline = tok.length > 2 ? tok.slice(tok[2] === '=' ? 3 : 2) : undefined;
    } else {
      positionals.push(tok);
      continue;
    }
    const def = all[name];
    if (def.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`${flag} is a switch and takes no value (got "${inline}")`);
      raw.set(name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      if (next.startsWith('-') && next.length > 1 && !NUMBER_LIKE.test(next)) throw new UsageError(`${flag} needs a value (got the option ${next}; write ${flag}=${next} if that is the value)`);
      value = next;
      i++;
    }
    raw.set(name, value);
  }
  const values: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(all)) {
    const v = raw.get(name);
    const flag = flagName(name);
    if (def.type === 'boolean') values[name] = v === true;
    else if (v === undefined) values[name] = def.default;
    else if (def.type === 'string') {
      const fold = (t: string) => (def.ignoreCase ? t.toLowerCase() : t);
      const choice = def.choices ? def.choices.find((c) => fold(c) === fold(v as string)) : (v as string);
      if (choice === undefined) {
        const guess = closest(fold(v as string), (def.choices ?? []).map(fold));
        throw new UsageError(`${flag} must be one of ${def.choices?.join(', ')}; got "${v}"${guess ? ` (did you mean ${guess}?)` : ''}`);
      }
      values[name] = choice;
    } else values[name] = parseNumber(v as string, flag, { ...def, integer: def.type === 'integer' });
  }
  return { values: values as OptionValues<O> & { json: boolean; help: boolean }, positionals };
}

/** How messages write an option: `-n` for one-letter names, `--ctx` otherwise. */
function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

function flagText(name: string, d: OptionDef): string {
  const value = d.type === 'boolean' ? '' : ` <${d.placeholder ?? (d.type === 'string' ? 'value' : d.type === 'integer' ? 'n' : 'x')}>`;
  if (name.length === 1) return `-${name}${value}`;
  return `${d.short ? `-${d.short}, ` : '    '}--${name}${value}`;
}

/** Choice lists longer than this go on a line of their own in --help, under the option. */
const LONG_CHOICES = 24;

function typeText(d: OptionDef, width = Number.POSITIVE_INFINITY): string {
  if (d.type === 'boolean') return 'switch';
  if (d.type === 'string') return d.choices && d.choices.join('|').length <= width ? d.choices.join('|') : d.choices ? 'one of ↓' : 'string';
  const r = describeRange({ ...d, integer: d.type === 'integer' });
  return d.type === 'integer' ? r.replace(/^an integer/, 'integer') : r.replace(/^a number/, 'number');
}

/** A UsageError naming every required option left out (run after --help is handled). */
export function checkRequired(spec: OptionSpec, values: Record<string, unknown>): void {
  const missing = Object.entries(spec).filter(([n, d]) => d.type === 'string' && d.required && values[n] === undefined).map(([n]) => flagName(n));
  if (missing.length) throw new UsageError(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required`);
}

function defaultOf(d: OptionDef): string {
  if (d.type === 'string' && d.required) return 'required';
  if (d.defaultText) return d.defaultText;
  if (d.type === 'boolean') return 'off';
  return d.default === undefined ? '' : String(d.default);
}

/** `lowbit <name> <model> [<text>] [options]` */
export function usageLine(c: Command): string {
  const args = (c.arguments ?? []).map((a) => (a.optional ? `[${a.name}]` : `<${a.name}>`));
  return ['lowbit', c.name, ...args, '[options]'].join(' ');
}

/** The --help text: usage, summary, arguments, every option with its type, default and description, examples. */
export function helpText(c: Command): string {
  const opts = Object.entries({ ...c.options, ...COMMON_OPTIONS } as OptionSpec);
  const rows = opts.map(([n, d]) => [flagText(n, d), typeText(d, LONG_CHOICES), defaultOf(d), d.description]);
  const w = [0, 1, 2].map((k) => Math.max(...rows.map((r) => r[k].length), k === 2 ? 'default'.length : 0));
  const lines = [`usage: ${usageLine(c)}`, '', `  ${c.summary}`, ''];
  if (c.arguments?.length) {
    const aw = Math.max(...c.arguments.map((a) => a.name.length));
    lines.push('arguments:', ...c.arguments.map((a) => `  ${a.name.padEnd(aw)}  ${a.description}`), '');
  }
  lines.push('options:', `  ${''.padEnd(w[0])}  ${'type'.padEnd(w[1])}  ${'default'.padEnd(w[2])}  description`);
  opts.forEach(([, d], i) => {
    const r = rows[i];
    lines.push(`  ${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
    if (d.type === 'string' && d.choices && d.choices.join('|').length > LONG_CHOICES) lines.push(`  ${''.padEnd(w[0])}  ↳ ${d.choices.join(', ')}`);
  });
  lines.push('', 'examples:', ...c.examples.map((e) => `  ${e}`), '');
  return lines.join('\n');
}

/** The same as Markdown (the README's per-command sections are generated from this). */
export function helpMarkdown(c: Command): string {
  const cell = (t: string) => t.replace(/\|/g, '\\|');
  const lines = [`### \`lowbit ${c.name}\``, '', c.summary, '', '```', usageLine(c), '```', ''];
  if (c.arguments?.length) {
    lines.push('| argument | description |', '|---|---|', ...c.arguments.map((a) => `| \`${a.name}\`${a.optional ? ' (optional)' : ''} | ${cell(a.description)} |`), '');
  }
  lines.push('| option | type | default | description |', '|---|---|---|---|');
  for (const [n, d] of Object.entries({ ...c.options, ...COMMON_OPTIONS } as OptionSpec)) {
    lines.push(`| \`${flagText(n, d).trim()}\` | ${cell(typeText(d))} | ${cell(defaultOf(d))} | ${cell(d.description)} |`);
  }
  lines.push('', 'Examples:', '', '```sh', ...c.examples, '```', '');
  return lines.join('\n');
}
