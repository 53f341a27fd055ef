// writeFileAtomic: the target appears whole or not at all, and the temporary files of writers that
// were killed (which nothing else would remove) go on the next write to the same path.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeStaleTemps, tempPath, writeFileAtomic, writeTextAtomic } from '../src/atomic-file.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-atomic-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (ids are reused only after the system wraps around). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('writeFileAtomic', () => {
  it('a failed body leaves neither the target nor a temporary file', async () => {
    const out = join(dir, 'fail.bin');
    await expect(writeFileAtomic(out, async (o) => {
      await o.write(Uint8Array.of(1, 2, 3));
      throw new Error('body failed');
    })).rejects.toThrow('body failed');
    expect(readdirSync(dir).filter((n) => n.startsWith('fail.bin'))).toEqual([]);
  });

  it("removes the same target's temporaries of dead processes, keeps live ones, ours, and other targets'", async () => {
    const out = join(dir, 'model.gguf');
    const dead = deadPid();
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    children.push(live);
    const names = {
      dead: tempPath(out, dead),
      live: tempPath(out, live.pid as number),
      other: tempPath(join(dir, 'other.gguf'), dead),
      notPid: `${out}.tmp-backup`,
    };
    for (const p of Object.values(names)) writeFileSync(p, 'partial');
    await writeTextAtomic(out, 'whole');
    expect(readFileSync(out, 'utf8')).toBe('whole');
    expect(existsSync(names.dead)).toBe(false);
    expect(existsSync(names.live)).toBe(true);
    expect(existsSync(names.other)).toBe(true);
    expect(existsSync(names.notPid)).toBe(true);
    // the live writer ends without cleaning up (killed): its temp goes on the next write
    live.kill('SIGKILL');
    await new Promise((r) => live.once('exit', r));
    expect(await removeStaleTemps(out)).toEqual([`model.gguf.tmp-${live.pid}`]);
  });

  it('a writer killed mid-write leaves the old target and a temp; the next write removes the temp', async () => {
    const out = join(dir, 'killed.gguf');
    writeFileSync(out, 'old');
    // a child writes through the built Node entry, reports its first chunk written, then hangs
    const entry = new URL('../dist/index-node.js', import.meta.url).href;
    const script = `
      const { writeFileAtomic } = await import(${JSON.stringify(entry)});
      await writeFileAtomic(${JSON.stringify(out)}, async (o) => {
        await o.write(new Uint8Array(1 << 20));
        process.stdout.write('started\\n');
        await new Promise(() => setInterval(() => {}, 1000));
      });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const temp = tempPath(out, child.pid as number);
    expect(existsSync(temp)).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe('old');
    await writeTextAtomic(out, 'new');
    expect(readFileSync(out, 'utf8')).toBe('new');
    expect(existsSync(temp)).toBe(false);
  });
});
