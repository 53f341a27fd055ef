// The lowbit command line: picks a command from the table, parses its options with node:util
// parseArgs, runs it, and maps failures to exit codes: 0 ok, 1 LowbitError (bad input: the message
// names the file/tensor), 2 usage error, 3 anything else (a bug: stack printed).
import { parseArgs } from 'node:util';
import { isLowbitError } from '@lowbit/runtime';
import { type CliEvent, type Command, type CommandContext, UsageError } from './command.js';
import { commands as builtin } from './commands/index.js';
import { ProgressBar } from './progress.js';

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  onEvent?: (e: CliEvent) => void;
}

function help(commands: Command[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return ['usage: lowbit <command> [options]   (every command: --json, --help)', '', ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), ''].join('\n');
}

/** Runs one command line; returns the exit code (never calls process.exit). */
export async function runCli(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }, commands: Command[] = builtin): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(help(commands));
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`lowbit: unknown command "${name}"\n${help(commands)}`);
    return 2;
  }
  try {
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({ args: rest, options: { ...cmd.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (parsed.values.help) {
      io.stdout.write(`${cmd.usage}\n  ${cmd.summary}\n`);
      return 0;
    }
    const json = Boolean(parsed.values.json);
    const bar = new ProgressBar(io.stderr);
    const ctx: CommandContext = {
      command: cmd.name,
      values: parsed.values as CommandContext['values'],
      positionals: parsed.positionals,
      json,
      print: (t) => {
        if (!json) io.stdout.write(`${t}\n`);
      },
      write: (t) => {
        if (!json) io.stdout.write(t);
      },
      warn: (t) => {
        io.stderr.write(`lowbit ${cmd.name}: ${t}\n`);
        io.onEvent?.({ type: 'message', command: cmd.name, text: t });
      },
      progress: (done, total, label) => {
        bar.update(done, total, label ?? cmd.name);
        io.onEvent?.({ type: 'progress', command: cmd.name, done, total, label });
      },
      emit: (e) => io.onEvent?.({ ...e, command: cmd.name }),
    };
    const result = await cmd.run(ctx);
    if (json) io.stdout.write(`${JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    return 0;
  } catch (e) {
    if (isLowbitError(e)) {
      io.stderr.write(`lowbit ${cmd.name}: ${e.message} [${e.code}]\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      io.stderr.write(`lowbit ${cmd.name}: ${e.message}\nusage: ${cmd.usage}\n`);
      return 2;
    }
    io.stderr.write(`lowbit ${cmd.name}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 3;
  }
}
