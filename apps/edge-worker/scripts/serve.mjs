// `npm start`: lays the built worker out for workerd, then runs `workerd serve workerd.capnp` with any
// extra arguments passed on (`npm start -- --socket-addr http=127.0.0.1:9000`). Ctrl-C stops it.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { layOutModules, workerdBin } from './workerd-modules.mjs';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
layOutModules();
const args = ['serve', join(app, 'workerd.capnp'), ...process.argv.slice(2)];
const child = spawn(workerdBin, args, { cwd: app, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
