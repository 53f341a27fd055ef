// What a lowbit subcommand is: its options (node:util parseArgs syntax), a one-line summary, and a
// `run` that calls one package API. Commands never print JSON themselves: they return a result, which
// the framework prints with --json, and call `ctx.print` for humans.
import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CliEvent {
  type: 'progress' | 'token' | 'message';
  command: string;
  done?: number;
  total?: number;
  label?: string;
  text?: string;
}

export interface CommandContext {
  command: string;
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  json: boolean;
  /** Human output (suppressed under --json). */
  print(text: string): void;
  /** Streamed human output without a newline (generate). */
  write(text: string): void;
  /** A note on stderr (also under --json) and a 'message' event: something the user should know. */
  warn(text: string): void;
  /** Progress: a bar on a TTY, an event for library callers. */
  progress(done: number, total: number, label?: string): void;
  emit(event: Omit<CliEvent, 'command'>): void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec;
  run(ctx: CommandContext): Promise<unknown>;
}

/** A string option as a positive integer, or a usage error naming the option. */
export function intOption(ctx: CommandContext, name: string, fallback: number): number {
  const v = ctx.values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got "${String(v)}"`);
  return n;
}

export function numberOption(ctx: CommandContext, name: string, fallback: number): number {
  const v = ctx.values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${String(v)}"`);
  return n;
}

/** Bad command line (exit code 2), as opposed to bad input files (LowbitError, exit code 1). */
export class UsageError extends Error {
  override name = 'UsageError';
}
