// The training study of the README (issue #21): PTQ (RTN, GPTQ) against QAT, INQ and AlphaTuning at
// 4/3/2 bits with groups of 32, and the regularization-frequency sweep, each one `lowbit` command.
//   node scripts/training-study.mjs [--jobs N] [--save results.json]   runs every command (N at once), then renders
//   node scripts/training-study.mjs --from results.json                  renders saved results
// Rendering prints the two markdown tables and writes docs/training-study.svg (lowbit study's plot).
// Run after a build (`npx turbo run build --filter=@lowbit/cli...`).
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { studySvg } from '../../cli/dist/study-report.js';

const bin = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const S = 150; // steps; each step is 4 windows of 256 tokens of the train excerpt (the command's defaults)
/** name → lowbit arguments. The learning rates are the command's defaults (the best tried, see finetune.ts). */
export const JOBS = {
  'rtn-int4': 'quantize --method rtn --format int4 --group 32', 'rtn-int3': 'quantize --method rtn --format int3 --group 32', 'rtn-int2': 'quantize --method rtn --format int2 --group 32',
  'gptq-int4': 'quantize --method gptq --format int4 --group 32', 'gptq-int3': 'quantize --method gptq --format int3 --group 32', 'gptq-int2': 'quantize --method gptq --format int2 --group 32',
  'qat4-b': `finetune --method qat --format int4 --steps ${S} --lr 1e-4`, 'qat3-b': `finetune --method qat --format int3 --steps ${S} --lr 1e-4`, 'qat2-b': `finetune --method qat --format int2 --steps ${S} --lr 1e-4`,
  'qat4-a': `finetune --method qat --format int4 --steps ${S} --lr 3e-5`, 'qat3-a': `finetune --method qat --format int3 --steps ${S} --lr 3e-5`, 'qat2-a': `finetune --method qat --format int2 --steps ${S} --lr 3e-5`,
  'inq4-b': `finetune --method inq --format int4 --steps ${S} --lr 3e-4`, 'inq3-b': `finetune --method inq --format int3 --steps ${S} --lr 3e-4`, 'inq2-b': `finetune --method inq --format int2 --steps ${S} --lr 3e-4`,
  'inq4-a': `finetune --method inq --format int4 --steps ${S} --lr 1e-4`, 'inq3-a': `finetune --method inq --format int3 --steps ${S} --lr 1e-4`, 'inq2-a': `finetune --method inq --format int2 --steps ${S} --lr 1e-4`,
  at1: `finetune --method alphatuning --format int1 --steps ${S} --lr 1e-3`, at2: `finetune --method alphatuning --format int2 --steps ${S} --lr 1e-3`, at3: `finetune --method alphatuning --format int3 --steps ${S} --lr 1e-3`,
  'at2-b': `finetune --method alphatuning --format int2 --steps ${S} --lr 3e-3`,
  qatq4: `finetune --method qat --format q4_0 --steps ${S} --lr 3e-5`,
  'lc3': `finetune --method qat --learn-clip --format int3 --steps ${S} --lr 1e-4`, 'lc2': `finetune --method qat --learn-clip --format int2 --steps ${S} --lr 1e-4`,
  'rf3-1': `finetune --method regfreq --format int3 --every 1 --steps ${S} --lr 3e-5`, 'rf3-10': `finetune --method regfreq --format int3 --every 10 --steps ${S} --lr 3e-5`, 'rf3-100': `finetune --method regfreq --format int3 --every 100 --steps ${S} --lr 3e-5`,
  'rfq4-1': `finetune --method regfreq --format q4_0 --every 1 --steps ${S} --lr 3e-5`, 'rfq4-10': `finetune --method regfreq --format q4_0 --every 10 --steps ${S} --lr 3e-5`, 'rfq4-100': `finetune --method regfreq --format q4_0 --every 100 --steps ${S} --lr 3e-5`,
};

function runOne(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args.split(' '), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`lowbit ${args}: exit ${code}`))));
  });
}

async function runAll(jobs) {
  const names = Object.keys(JOBS);
  const results = {};
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const n = names[next++];
      results[n] = await runOne(JOBS[n]);
      console.error(`done ${n}`);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return results;
}

const f4 = (v) => (v >= 100 ? v.toFixed(1) : v.toFixed(3));
const secs = (r) => (r.seconds_train ?? r.seconds_quantize).toFixed(0);
const tok = (r) => (r.tokens ? r.tokens.toLocaleString('en-US') : '—');

function render(R) {
  const rows = [];
  const table = ['| method | bits/weight | perplexity | training tokens | time (s) |', '|---|---:|---:|---:|---:|'];
  const add = (label, bpw, ppl, r) => {
    rows.push({ label, bitsPerWeight: bpw, perplexity: ppl, seconds: 0 });
    table.push(`| ${label} | ${bpw.toFixed(3)} | ${f4(ppl)} | ${r ? tok(r) : '—'} | ${r ? secs(r) : '—'} |`);
  };
  add('FP32', 32, R['rtn-int4'].perplexity_before);
  table[2] = table[2].replace('32.000', '32');
  for (const b of [4, 3, 2]) {
    add(`RTN int${b} g32`, R[`rtn-int${b}`].bits_per_weight, R[`rtn-int${b}`].perplexity_after, R[`rtn-int${b}`]);
    add(`GPTQ int${b} g32`, R[`gptq-int${b}`].bits_per_weight, R[`gptq-int${b}`].perplexity_after, R[`gptq-int${b}`]);
    add(`QAT int${b} g32 (lr 1e-4)`, R[`qat${b}-b`].bits_per_weight, R[`qat${b}-b`].perplexity_after, R[`qat${b}-b`]);
    add(`QAT int${b} g32 (lr 3e-5)`, R[`qat${b}-a`].bits_per_weight, R[`qat${b}-a`].perplexity_after, R[`qat${b}-a`]);
    // learned clipping came later: results saved before it have no such rows
    if (R[`lc${b}`]) add(`QAT int${b} g32, learned clipping (lr 1e-4)`, R[`lc${b}`].bits_per_weight, R[`lc${b}`].perplexity_after, R[`lc${b}`]);
    add(`INQ ${b}-bit g32, one-shot`, R[`inq${b}-b`].bits_per_weight, R[`inq${b}-b`].perplexity_ptq);
    add(`INQ ${b}-bit g32 (lr 3e-4)`, R[`inq${b}-b`].bits_per_weight, R[`inq${b}-b`].perplexity_after, R[`inq${b}-b`]);
  }
  for (const k of [3, 2, 1]) {
    const r = R[`at${k}`];
    add(`BCQ ${k} plane${k > 1 ? 's' : ''} g32, untuned`, r.bits_per_weight, r.perplexity_ptq);
    add(`AlphaTuning ${k} plane${k > 1 ? 's' : ''} g32 (lr 1e-3)`, r.bits_per_weight, r.perplexity_after, r);
  }
  add('RTN q4_0', R.qatq4.bits_per_weight, R.qatq4.perplexity_ptq);
  add('QAT q4_0 (lr 3e-5)', R.qatq4.bits_per_weight, R.qatq4.perplexity_after, R.qatq4);
  const sweep = ['| grid | projected every N steps | perplexity | training tokens | time (s) |', '|---|---:|---:|---:|---:|'];
  for (const [g, key] of [['int3 g32', 'rf3'], ['q4_0', 'rfq4']]) {
    for (const n of [1, 10, 100]) {
      const r = R[`${key}-${n}`];
      sweep.push(`| ${g} | ${n} | ${f4(r.perplexity_after)} | ${tok(r)} | ${secs(r)} |`);
    }
  }
  console.log(table.join('\n'));
  console.log();
  console.log(sweep.join('\n'));
  // lowbit study's plot, with the training methods in their own colours (the plot colours the families it knows)
  const colour = (label) => (/^QAT/.test(label) ? '#17becf' : /^INQ/.test(label) ? '#bcbd22' : /^AlphaTuning/.test(label) ? '#e377c2' : /^BCQ/.test(label) ? '#7f7f7f' : null);
  const pts = rows.filter((r) => r.bitsPerWeight < 16);
  const lines = studySvg(rows).split('\n');
  let point = 0;
  let key = 0;
  for (let i = 0; i < lines.length; i++) {
    const isKey = /^<circle[^>]*\/><text/.test(lines[i]);
    const isPoint = !isKey && /^<(circle|path) /.test(lines[i]);
    const idx = isKey ? key++ : isPoint ? point++ : -1;
    const c = idx >= 0 ? colour(pts[idx].label) : null;
    if (!c) continue;
    lines[i] = lines[i].replace(/fill="#[0-9a-f]{6}"/g, `fill="${c}"`);
    if (isPoint) lines[i + 1] = lines[i + 1].replace(/fill="#[0-9a-f]{6}"/, `fill="${c}"`);
  }
  const svg = fileURLToPath(new URL('../docs/training-study.svg', import.meta.url));
  writeFileSync(`${svg}.tmp-${process.pid}`, `${lines.join('\n')}\n`);
  renameSync(`${svg}.tmp-${process.pid}`, svg);
}

const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const from = opt('--from');
const results = from ? JSON.parse(readFileSync(from, 'utf8')) : await runAll(Number(opt('--jobs') ?? 1));
if (!from && opt('--save')) writeFileSync(opt('--save'), JSON.stringify(results));
render(results);
