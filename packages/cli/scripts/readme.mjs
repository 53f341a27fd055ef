// Regenerates the per-command sections of README.md from the commands' option specs (the same data
// --help prints), between the two markers. Run after a build: npm run readme -w @lowbit/cli
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { commands, helpMarkdown } from '../dist/index.js';

const file = new URL('../README.md', import.meta.url);
const [start, end] = ['<!-- commands: generated from the option specs by `npm run readme`; edit src/commands/*.ts -->', '<!-- /commands -->'];
const text = readFileSync(file, 'utf8');
const [i, j] = [text.indexOf(start), text.indexOf(end)];
if (i < 0 || j < i) throw new Error(`README.md: markers ${start} … ${end} not found`);
const body = commands.map((c) => helpMarkdown(c)).join('\n');
const tmp = `${file.pathname}.tmp-${process.pid}`;
writeFileSync(tmp, `${text.slice(0, i + start.length)}\n\n${body}\n${text.slice(j)}`);
renameSync(tmp, file);
console.log(`README.md: ${commands.length} command sections`);
