import type { CliEvent } from '../src/command.js';
import { runCli } from '../src/main.js';

/** Runs `lowbit argv…` in-process and collects stdout, stderr, the exit code and the progress events. */
export async function run(argv: string[]): Promise<{ code: number; out: string; err: string; events: CliEvent[] }> {
  let out = '';
  let err = '';
  const events: CliEvent[] = [];
  const code = await runCli(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, onEvent: (e) => events.push(e) });
  return { code, out, err, events };
}
