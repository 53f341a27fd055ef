// The lowbit command line: picks a command from the table, parses its options against the command's
// spec, runs it, and maps failures to exit codes: 0 ok, 1 LowbitError (bad input: the message
// names the file/tensor), 2 usage error, 3 anything else (a bug: stack printed).
import { isLowbitError } from '@lowbit/runtime';
import { type CliEvent, type Command, type CommandContext, UsageError, checkRequired, closest, helpText, parseCommandLine } from './command.js';
import { commands as builtin } from './commands/index.js';
import { ProgressBar } from './progress.js';

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  onEvent?: (e: CliEvent) => void;
}

function overview(commands: Command[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: lowbit <command> [options]   (every command: --json, --help)', '',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), '',
    'lowbit <command> --help lists its options, their types and defaults, and examples.', '',
  ].join('\n');
}

/** Runs one command line; returns the exit code (never calls process.exit). */
export async function runCli(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }, commands: Command[] = builtin): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    io.stdout.write(topic ? helpText(topic) : overview(commands));
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    const guess = closest(name, commands.map((c) => c.name));
    io.stderr.write(`lowbit: unknown command "${name}"${guess ? `; did you mean "${guess}"?` : ''}\n${overview(commands)}`);
    return 2;
  }
  try {
    const parsed = parseCommandLine(rest, cmd.options);
    if (parsed.values.help) {
      io.stdout.write(helpText(cmd));
      return 0;
    }
    checkRequired(cmd.options, parsed.values);
    const json = parsed.values.json;
    const bar = new ProgressBar(io.stderr);
    const ctx: CommandContext = {
      command: cmd.name,
      values: parsed.values,
      positionals: parsed.positionals,
      json,
      print: (t) => {
        if (!json) io.stdout.write(`${t}\n`);
      },
      write: (t) => {
        if (!json) io.stdout.write(t);
      },
      warn: (t) => {
        bar.clear();
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
    bar.clear();
    if (json) io.stdout.write(`${JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    return 0;
  } catch (e) {
    if (isLowbitError(e)) {
      io.stderr.write(`lowbit ${cmd.name}: ${e.message} [${e.code}]\n`);
      return 1;
    }
    const sys = e as NodeJS.ErrnoException;
    if (sys instanceof Error && typeof sys.code === 'string' && typeof sys.syscall === 'string') {
      // the file system refused (a path checked before the work began changed, a disk filled): bad
      // input, not a bug, whichever layer met it
      io.stderr.write(`lowbit ${cmd.name}: ${sys.path ?? ''}${sys.path ? ': ' : ''}${sys.syscall} failed: ${sys.message} [E_IO]\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      io.stderr.write(`lowbit ${cmd.name}: ${e.message}\n(lowbit ${cmd.name} --help lists the options)\n`);
      return 2;
    }
    io.stderr.write(`lowbit ${cmd.name}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 3;
  }
}
