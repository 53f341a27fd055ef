// The page: panels, controls and results. Everything heavy runs in two demo workers (the original
// model, and the copy that gets quantized), reached through comlink.
import { type Remote, proxy, wrap } from 'comlink';
import type { AllocateReport, AllocateSettings, DemoApi, ModelSummary, QuantizeReport, QuantizeSettings, SimReport, Stage } from './api.js';
import { GGML_FORMATS, INT_BITS, MX_FORMATS, STUDY_FORMATS } from './api.js';
import { poolSizes } from './bench.js';
import { errorHistogram, perplexityPlot, speedupBars } from './plot.js';
import './style.css';

// ---------- small DOM helpers ----------

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | EventListener> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') e.addEventListener(k.replace(/^on/, ''), v);
    else if (typeof v === 'boolean') {
      if (v) e.setAttribute(k, '');
    } else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

const fmtBytes = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const fmtCount = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} K` : String(n));

/** `E_CODE: message` for errors that crossed from the worker (comlink keeps LowbitError's code). */
function errorText(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? e);
}

// ---------- workers ----------

interface DemoWorker {
  api: Remote<DemoApi>;
  terminate(): void;
}

function startWorker(name: string): DemoWorker {
  // the literal `new Worker(new URL(...), { type: 'module' })` is what Vite bundles as a worker
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name });
  worker.addEventListener('error', (e) => showError(`the ${name} worker failed: ${(e as ErrorEvent).message || 'its script did not load'}`));
  return { api: wrap<DemoApi>(worker), terminate: () => worker.terminate() };
}

type Source = { kind: 'embedded' } | { kind: 'file'; file: File };
const openIn = (w: DemoWorker, s: Source) => (s.kind === 'embedded' ? w.api.openEmbedded() : w.api.openFile(s.file, s.file.name));

let original = startWorker('original');
/** The original worker holds the opened model (false after a cancel replaced it and the reopen failed). */
let originalReady: Promise<boolean> = Promise.resolve(false);
let quantizer = startWorker('quantized');
let source: Source | undefined;
let summary: ModelSummary | undefined;
/** The quantizer worker holds the opened model (resolves false when it could not open it). */
let quantizerReady: Promise<boolean> = Promise.resolve(false);
let busy = false;
const runs: QuantizeReport[] = [];
let lastRun: QuantizeReport | undefined;
/** The quantizer worker's model is a quantized result (of lastRun, or of the allocator). */
let haveQuantized = false;
/** What the quantizer worker's model is, as the Generate and Sim panels name it. */
let quantizedLabel = '';
/** The quantized result is llama.cpp blocks (GGUF only: safetensors has no layout for them). */
let quantizedGgml = false;

// ---------- layout ----------

const PANELS = [
  { id: 'model', title: 'Model' },
  { id: 'quantize', title: 'Quantize' },
  { id: 'allocate', title: 'Mixed precision' },
  { id: 'generate', title: 'Generate' },
  { id: 'formats', title: 'Formats' },
  { id: 'kernels', title: 'Kernels' },
  { id: 'sim', title: 'Accelerator' },
] as const;

function showError(text: string, where = '#error') {
  const box = $(where);
  box.textContent = text;
  box.hidden = !text;
}

function selectPanel(id: string, focus = false) {
  for (const p of PANELS) {
    const tab = $(`#tab-${p.id}`);
    const on = p.id === id;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`#panel-${p.id}`).hidden = !on;
    if (on && focus) tab.focus();
  }
}

function tabs(): HTMLElement {
  const nav = h('nav', { role: 'tablist', 'aria-label': 'Panels' });
  PANELS.forEach((p, i) => {
    nav.append(
      h('button', {
        id: `tab-${p.id}`, role: 'tab', 'aria-controls': `panel-${p.id}`, type: 'button',
        onclick: () => selectPanel(p.id),
        onkeydown: ((e: KeyboardEvent) => {
          const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
          if (d) selectPanel(PANELS[(i + d + PANELS.length) % PANELS.length].id, true);
          else if (e.key === 'Home') selectPanel(PANELS[0].id, true);
          else if (e.key === 'End') selectPanel(PANELS[PANELS.length - 1].id, true);
        }) as EventListener,
      }, p.title),
    );
  });
  return nav;
}

// ---------- Model panel ----------

function modelPanel(): HTMLElement {
  const input = h('input', { type: 'file', id: 'model-file', accept: '.gguf,.safetensors', class: 'visually-hidden' });
  input.addEventListener('change', () => {
    const f = input.files?.[0];
    if (f) void openSource({ kind: 'file', file: f });
    input.value = '';
  });
  // the input inside its label: keyboard focus on it outlines the whole drop zone (:focus-within)
  const drop = h('label', { class: 'drop', id: 'drop' }, h('strong', {}, 'Drop a .gguf or .safetensors file here'), ' or click to pick one (Enter or Space when focused). It is read in this tab only: nothing is uploaded.', input);
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) void openSource({ kind: 'file', file: f });
  });
  return h('section', { id: 'panel-model', role: 'tabpanel', 'aria-labelledby': 'tab-model' },
    h('p', { class: 'explain' }, 'Pick the model to work on. The embedded one is stories260K, a 260 K-parameter Llama trained on TinyStories (1.1 MB of f32 weights): small enough that everything below takes seconds. Your own GGUF (Llama, Qwen2, GPT-2 architectures) works the same way, only slower.'),
    h('div', { class: 'row' }, h('button', { id: 'open-embedded', type: 'button', onclick: () => void openSource({ kind: 'embedded' }) }, 'Load the embedded stories260K'), drop),
    h('div', { class: 'actions' },
      h('progress', { id: 'm-progress', hidden: true, 'aria-label': 'opening progress' }),
      h('span', { id: 'model-status', class: 'status', 'aria-live': 'polite' }),
      h('button', { type: 'button', id: 'm-cancel', class: 'secondary', hidden: true, onclick: cancelOpen }, 'Cancel'),
    ),
    h('div', { id: 'model-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 'model-summary' }),
  );
}

async function openSource(s: Source) {
  if (busy) {
    $('#model-status').textContent = 'A quantization or generation is running: wait for it (or cancel it) before opening another model.';
    return;
  }
  showError('', '#model-error');
  $('#model-status').textContent = `Opening ${s.kind === 'embedded' ? 'stories260K.gguf' : s.file.name} (read and checked in the worker)...`;
  const id = ++runId;
  busy = true;
  updateControls();
  ($('#m-progress') as HTMLProgressElement).hidden = false;
  ($('#m-cancel') as HTMLButtonElement).hidden = false;
  try {
    const next = await openIn(original, s);
    if (id !== runId) return; // cancelled: the worker that read it is gone
    busy = false;
    source = s;
    originalReady = Promise.resolve(true);
    summary = next;
    haveQuantized = false;
    quantizedLabel = '';
    lastRun = undefined;
    allocation = undefined;
    runs.length = 0;
    renderSummary(next);
    renderRuns();
    renderLast();
    renderAllocation();
    // results of the previous model would read as this one's
    for (const id of ['#f-result', '#s-result', '#g-orig-text', '#g-orig-stats', '#g-quant-text', '#g-quant-stats']) $(id).replaceChildren();
    $('#g-quant-title').textContent = 'Quantized';
    for (const p of ['q', 'a', 'g', 'f', 's']) setProgress(p, 0, 1, '');
    $('#model-status').textContent = next.runnable ? `Loaded ${next.name}: ready to quantize and generate.` : `Inspected ${next.name}: ${next.why}`;
    quantizerReady = next.runnable ? openIn(quantizer, s).then(() => true, () => false) : Promise.resolve(false);
    updateControls();
    if (next.runnable) await fillTensorChoices();
  } catch (e) {
    if (id !== runId) return;
    $('#model-status').textContent = summary ? `Still using ${summary.name}.` : '';
    showError(`Cannot open this file. ${errorText(e)}`, '#model-error');
  } finally {
    if (id === runId) {
      busy = false;
      ($('#m-progress') as HTMLProgressElement).hidden = true;
      ($('#m-cancel') as HTMLButtonElement).hidden = true;
      updateControls();
    }
  }
}

/** Reading a file runs in the original worker without taking messages: cancel replaces that worker. */
function cancelOpen() {
  if (!busy) return;
  runId++;
  restartOriginal();
  busy = false;
  ($('#m-progress') as HTMLProgressElement).hidden = true;
  ($('#m-cancel') as HTMLButtonElement).hidden = true;
  $('#model-status').textContent = summary ? `Cancelled: still using ${summary.name}.` : 'Cancelled.';
  updateControls();
}

/** A fresh original worker, reopening the model in use (the quantizer worker keeps its own). */
function restartOriginal() {
  original.terminate();
  original = startWorker('original');
  const s = source;
  originalReady = s && summary?.runnable ? openIn(original, s).then(() => true, () => false) : Promise.resolve(false);
}

async function ensureOriginal() {
  if (!(await originalReady)) throw new Error('the original model could not be opened again after a cancel: load it again (Model panel)');
}

function renderSummary(m: ModelSummary) {
  const c = m.config;
  const facts: [string, string][] = [
    ['file', `${m.name} (${m.container.toUpperCase()}, ${fmtBytes(m.fileBytes)})`],
    ['parameters', `${fmtCount(m.params)} in ${m.tensors.length} tensors`],
    ['stored bits per weight', `${m.bitsPerWeight.toFixed(3)} bits (all tensors)`],
  ];
  if (c) {
    facts.push(
      ['architecture', c.architecture],
      ['layers × width', `${c.nLayers} layers, dim ${c.dim}, FFN ${c.hiddenDim}`],
      ['attention', `${c.nHeads} heads, ${c.nKvHeads} KV heads`],
      ['vocabulary / context', `${c.vocabSize} tokens / ${c.contextLength} tokens`],
    );
  }
  if (m.kernels) facts.push(['kernels', `${m.kernels} WebAssembly build${m.kernels === 'relaxed' ? ' (relaxed SIMD)' : m.kernels === 'simd' ? ' (relaxed SIMD missing here: plain SIMD)' : ''}`]);
  const byType = new Map<string, number>();
  for (const t of m.tensors) byType.set(t.type, (byType.get(t.type) ?? 0) + 1);
  const rows = m.tensors.map((t) =>
    h('tr', {}, h('td', {}, t.name), h('td', {}, t.type), h('td', { class: 'num' }, `[${t.shape.join(', ')}]`), h('td', { class: 'num' }, fmtBytes(t.bytes)), h('td', { class: 'num' }, Number.isFinite(t.bitsPerWeight) ? t.bitsPerWeight.toFixed(3) : 'n/a')),
  );
  $('#model-summary').replaceChildren(h('div', { class: 'cols model-cols' },
    h('div', {},
      h('table', { class: 'facts', id: 'model-facts' }, ...facts.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))),
      h('p', {}, `Tensor types: ${[...byType].map(([t, n]) => `${t} × ${n}`).join(', ')}.`),
      h('details', {}, h('summary', {}, `Metadata (${m.metadata.length} keys)`), h('table', { class: 'meta' }, ...m.metadata.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v))))),
    ),
    h('div', { class: 'scroll' },
      h('table', { class: 'tensors', id: 'tensor-table' },
        h('caption', {}, 'Tensors as stored in the file (shape in the file\'s order)'),
        h('thead', {}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'type'), h('th', {}, 'shape'), h('th', {}, 'size'), h('th', {}, 'bits/weight'))),
        h('tbody', {}, ...rows),
      ),
    ),
  ));
}

// ---------- Quantize panel ----------

function field(label: string, control: HTMLElement, help: string): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, h('small', {}, help));
}

/** The run button, Cancel, a progress bar and the stage text of a long task (ids `<p>-run`, `<p>-cancel`, ...). */
function taskActions(p: string, runText: string, cancel: () => void): HTMLElement {
  return h('div', { class: 'actions' },
    h('button', { type: 'submit', id: `${p}-run` }, runText),
    h('button', { type: 'button', id: `${p}-cancel`, class: 'secondary', disabled: true, onclick: cancel }, 'Cancel'),
    h('progress', { id: `${p}-progress`, max: 1, value: 0, 'aria-label': 'progress' }),
    h('span', { id: `${p}-stage`, class: 'stage', 'aria-live': 'polite' }),
  );
}

function setProgress(p: string, done: number, total: number, text: string) {
  const bar = $(`#${p}-progress`) as HTMLProgressElement;
  bar.max = Math.max(1, total);
  bar.value = done;
  $(`#${p}-stage`).textContent = text;
}

function option(value: string, text: string, selected = false) {
  return h('option', { value, selected }, text);
}

function quantizePanel(): HTMLElement {
  const method = h('select', { id: 'q-method' }, option('rtn', 'RTN: round to nearest', true), option('gptq', 'GPTQ: error-compensating, uses calibration text'));
  const format = h('select', { id: 'q-format' },
    h('optgroup', { label: 'INT-k (lowbit tensor types)' }, ...INT_BITS.map((b) => option(`int${b}`, `int${b}`, b === 4))),
    h('optgroup', { label: 'llama.cpp blocks' }, ...GGML_FORMATS.map((f) => option(f, f))),
    h('optgroup', { label: 'OCP microscaling (MX)' }, ...MX_FORMATS.map((f) => option(f, f))),
  );
  const group = h('select', { id: 'q-group' }, option('32', '32 columns', true), option('64', '64 columns'), option('128', '128 columns'), option('0', 'per output channel'));
  const symmetric = h('input', { type: 'checkbox', id: 'q-symmetric', checked: true });
  const actOrder = h('input', { type: 'checkbox', id: 'q-act-order' });
  const smooth = h('input', { type: 'number', id: 'q-smooth', min: 0, max: 1, step: 0.05, placeholder: 'off' });
  const adaDim = h('input', { type: 'checkbox', id: 'q-adadim' });
  const clipSearch = h('input', { type: 'checkbox', id: 'q-clip' });
  const calib = h('select', { id: 'q-calib' }, option('embedded', 'embedded TinyStories train excerpt (197 KB)', true), option('file', 'my own text file...'));
  const calibFile = h('input', { type: 'file', id: 'q-calib-file', accept: '.txt,text/plain', hidden: true });
  const calibWindows = h('input', { type: 'number', id: 'q-calib-windows', min: 1, max: 512, value: 8 });
  const evalWindows = h('input', { type: 'number', id: 'q-eval-windows', min: 1, max: 64, value: 4 });
  calib.addEventListener('change', () => {
    calibFile.hidden = calib.value !== 'file';
  });
  for (const c of [method, format, actOrder, adaDim, clipSearch, smooth]) c.addEventListener('change', updateControls);
  return h('section', { id: 'panel-quantize', role: 'tabpanel', 'aria-labelledby': 'tab-quantize', hidden: true },
    h('p', { class: 'explain' }, 'Quantize every linear layer of the loaded model (the embeddings stay in full precision), then measure what it cost: perplexity on held-out text before and after, against the bits each weight takes. Each run adds a point to the chart.'),
    h('form', { id: 'q-form', class: 'grid', onsubmit: ((e: Event) => { e.preventDefault(); void runQuantize(); }) as EventListener },
      field('Method', method, 'RTN rounds each weight to the nearest grid value. GPTQ quantizes column by column and spreads each rounding error over the columns not yet quantized, using the calibration text\'s statistics.'),
      field('Format', format, 'int-k: k-bit integers with one fp16 scale per group. q4_0/q4_1/q8_0: llama.cpp\'s blocks of 32. MX: 32 elements sharing a power-of-two scale.'),
      field('Group (int-k)', group, 'Columns sharing one scale: smaller groups follow the weights more closely and cost more bits for scales.'),
      h('div', { class: 'field' }, h('label', {}, symmetric, ' symmetric (int-k)'), h('label', {}, actOrder, ' act-order (GPTQ)'), h('small', {}, 'Symmetric: no zero point. Act-order: GPTQ takes the columns with the largest activations first (with fixed groups for llama.cpp blocks).')),
      field('SmoothQuant α', smooth, 'Empty: off. 0..1: moves activation outliers into the weights before quantizing (folded into the norms, exact in full precision). Uses the calibration text.'),
      h('div', { class: 'field' }, h('label', {}, adaDim, ' AdaDim (int-k)'), h('label', {}, clipSearch, ' clipping search (int-k)'), h('small', {}, 'AdaDim: per layer, scales along inputs or outputs, whichever leaves less output error. Clipping search: per layer, shrink the range (1 to 0.6) where that lowers the error. Both use the calibration text.')),
      field('Calibration text', calib, 'For GPTQ, SmoothQuant, AdaDim and the clipping search: text the model reads to measure which weights matter. Never the validation text.'),
      h('div', { class: 'field' }, calibFile),
      field('Calibration windows', calibWindows, 'Windows of 256 tokens read for GPTQ statistics (8 = 2048 tokens; more is slower and a little better).'),
      field('Validation windows', evalWindows, 'Perplexity is measured on the first N windows of 256 tokens of the embedded TinyStories validation text (bounded for speed).'),
      taskActions('q', 'Quantize', () => cancelQuantizer('q')),
    ),
    h('div', { id: 'q-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 'q-result' }),
    h('div', { class: 'cols' }, h('div', { id: 'q-plot' }), h('div', { id: 'q-runs', class: 'scroll' })),
  );
}

function readSettings(): QuantizeSettings {
  const f = ($('#q-format') as HTMLSelectElement).value;
  const isInt = f.startsWith('int');
  const method = ($('#q-method') as HTMLSelectElement).value as 'rtn' | 'gptq';
  const actOrder = method === 'gptq' && ($('#q-act-order') as HTMLInputElement).checked;
  return {
    method, actOrder,
    // llama.cpp blocks need the groups fixed before act-order reorders the columns
    staticGroups: actOrder && !isInt,
    format: (isInt ? 'int' : f) as QuantizeSettings['format'],
    bits: isInt ? Number(f.slice(3)) : 0,
    group: isInt ? Number(($('#q-group') as HTMLSelectElement).value) : 32,
    symmetric: isInt ? ($('#q-symmetric') as HTMLInputElement).checked : true,
    smooth: smoothValue(),
    adaDim: isInt && ($('#q-adadim') as HTMLInputElement).checked,
    clipSearch: isInt && ($('#q-clip') as HTMLInputElement).checked,
    calibWindows: Math.max(1, Math.floor(Number(($('#q-calib-windows') as HTMLInputElement).value) || 8)),
    evalWindows: Math.max(1, Math.floor(Number(($('#q-eval-windows') as HTMLInputElement).value) || 4)),
    ctx: 256,
  };
}

function smoothValue(): number | undefined {
  const v = ($('#q-smooth') as HTMLInputElement).value.trim();
  if (v === '') return undefined;
  const a = Number(v);
  return Number.isFinite(a) ? Math.min(1, Math.max(0, a)) : undefined;
}

/** Whether the settings read calibration text (as quantizeModel decides). */
function needsCalibration(): boolean {
  const int = ($('#q-format') as HTMLSelectElement).value.startsWith('int');
  return ($('#q-method') as HTMLSelectElement).value === 'gptq' || smoothValue() !== undefined || (int && (($('#q-adadim') as HTMLInputElement).checked || ($('#q-clip') as HTMLInputElement).checked));
}

function updateControls() {
  const f = ($('#q-format') as HTMLSelectElement).value;
  const gptq = ($('#q-method') as HTMLSelectElement).value === 'gptq';
  ($('#q-group') as HTMLSelectElement).disabled = !f.startsWith('int');
  ($('#q-symmetric') as HTMLInputElement).disabled = !f.startsWith('int');
  ($('#q-act-order') as HTMLInputElement).disabled = !gptq;
  ($('#q-adadim') as HTMLInputElement).disabled = !f.startsWith('int');
  ($('#q-clip') as HTMLInputElement).disabled = !f.startsWith('int');
  ($('#q-calib') as HTMLSelectElement).disabled = !needsCalibration();
  ($('#q-calib-windows') as HTMLInputElement).disabled = !needsCalibration();
  const runnable = !!summary?.runnable;
  ($('#q-run') as HTMLButtonElement).disabled = busy || !runnable;
  ($('#g-run') as HTMLButtonElement).disabled = busy || !runnable;
  ($('#f-run') as HTMLButtonElement).disabled = busy || !runnable;
  ($('#a-run') as HTMLButtonElement).disabled = busy || !runnable;
  ($('#s-run') as HTMLButtonElement).disabled = busy || !runnable;
  for (const b of document.querySelectorAll<HTMLButtonElement>('.download')) b.disabled = busy || !haveQuantized || (b.dataset.kind === 'safetensors' && quantizedGgml);
  const simModel = document.querySelector('#s-model');
  if (simModel) simModel.textContent = haveQuantized ? `the quantized model (${quantizedLabel})` : 'the original model (f32 weights, taken as 16-bit: only Stripes, which reads activations only, runs it; quantize the model for the others)';
  // every design but Stripes reads the weights' stored precision or codes, which f32 weights lack
  const accel = document.querySelector<HTMLSelectElement>('#s-accel');
  if (accel) {
    for (const o of accel.options) o.disabled = !haveQuantized && o.value !== 'stripes';
    if (accel.selectedOptions[0]?.disabled) accel.value = 'stripes';
  }
}

const STAGE_TEXT: Record<Stage, string> = {
  load: 'reloading the original weights', 'eval original': 'perplexity of the original (windows)', quantize: 'quantizing layers', 'eval quantized': 'perplexity of the quantized model (windows)', save: 'writing the file',
  measure: 'measuring loss changes (forward passes)', solve: 'solving the integer program (HiGHS)', capture: 'running the model to capture activations', simulate: 'simulating layers',
};

const stageText = (st: Stage, done: number, total: number) => `${STAGE_TEXT[st]}${total > 1 ? `: ${done} / ${total}` : ''}`;

let cancelled = false;
/** Counts runs, so a cancelled run's late progress messages change nothing. */
let runId = 0;

async function runQuantize() {
  if (busy || !summary?.runnable || !source) return;
  showError('', '#q-error');
  const s = readSettings();
  if (needsCalibration() && ($('#q-calib') as HTMLSelectElement).value === 'file') {
    const f = ($('#q-calib-file') as HTMLInputElement).files?.[0];
    if (!f) return showError('Pick a calibration text file, or choose the embedded excerpt.', '#q-error');
    s.calibration = await f.text();
  }
  const id = startTask('q');
  try {
    await ensureQuantizer();
    const report = await quantizer.api.quantize(s, progressFor('q', id));
    runs.push(report);
    lastRun = report;
    setQuantized(report.label, GGML_FORMATS.includes(report.settings.format as (typeof GGML_FORMATS)[number]));
    $('#q-stage').textContent = `done in ${report.secondsTotal.toFixed(1)} s`;
    renderLast();
    renderRuns();
  } catch (e) {
    if (!cancelled) showError(`Quantization failed. ${errorText(e)}`, '#q-error');
  } finally {
    endTask('q');
  }
}

/** Marks a long task in panel `p` as running: one at a time, Cancel enabled; returns its run id. */
function startTask(p: string): number {
  busy = true;
  cancelled = false;
  const id = ++runId;
  updateControls();
  ($(`#${p}-cancel`) as HTMLButtonElement).disabled = false;
  setProgress(p, 0, 1, 'starting...');
  return id;
}

function endTask(p: string) {
  busy = false;
  ($(`#${p}-cancel`) as HTMLButtonElement).disabled = true;
  updateControls();
}

/** Progress messages of run `id` into panel `p`'s bar; a cancelled run's late messages change nothing. */
function progressFor(p: string, id: number) {
  return proxy((st: Stage, done: number, total: number) => {
    // messages travel on their own port and can arrive after the result: once the task ended, ignore them
    if (id === runId && busy) setProgress(p, done, total, stageText(st, done, total));
  });
}

/** The quantizer worker holds the opened model (it was replaced by a cancel, or its first open failed). */
async function ensureQuantizer() {
  if (await quantizerReady) return;
  if (!source) throw new Error('no model opened');
  quantizerReady = openIn(quantizer, source).then(() => true);
  await quantizerReady;
}

function setQuantized(label: string, ggml: boolean) {
  haveQuantized = true;
  quantizedLabel = label;
  quantizedGgml = ggml;
}

/**
 * A quantization is one long computation in the worker, which takes no message until it ends: cancel
 * stops that worker and starts a fresh one (the model is opened there again on the next run).
 */
function cancelQuantizer(p: string) {
  if (!busy) return;
  cancelled = true;
  runId++;
  quantizer.terminate();
  quantizer = startWorker('quantized');
  quantizerReady = Promise.resolve(false);
  haveQuantized = false;
  setProgress(p, 0, 1, 'cancelled');
  endTask(p);
}

function renderLast() {
  const r = lastRun;
  if (!r) return $('#q-result').replaceChildren();
  const delta = ((r.pplAfter - r.pplBefore) / r.pplBefore) * 100;
  $('#q-result').replaceChildren(
    h('div', { class: 'card', id: 'q-last', 'data-ppl-before': r.pplBefore, 'data-ppl-after': r.pplAfter, 'data-bits': r.bitsPerWeight },
      h('h3', {}, `Run #${runs.length}: ${r.label}`),
      h('dl', {},
        h('dt', {}, 'perplexity'), h('dd', {}, h('span', { id: 'q-ppl-before' }, r.pplBefore.toFixed(4)), ' → ', h('strong', { id: 'q-ppl-after' }, r.pplAfter.toFixed(4)), ` (${delta >= 0 ? '+' : ''}${delta.toFixed(2)} %, ± ${r.stderrAfter.toFixed(4)} std. error, ${r.tokens} tokens)`),
        h('dt', {}, 'bits per weight'), h('dd', { id: 'q-bits' }, `${r.bitsPerWeight.toFixed(3)} bits (the ${r.layers} quantized layers, scales included; f32 is 32)`),
        h('dt', {}, 'time'), h('dd', {}, `${r.secondsQuantize.toFixed(2)} s quantizing, ${r.secondsTotal.toFixed(2)} s with both perplexities`),
      ),
      downloadButtons('q'),
      h('small', { class: 'note' }, r.settings.format.startsWith('q')
        ? 'GGUF: llama.cpp runs this file. llama.cpp blocks have no safetensors layout, so there is no safetensors download.'
        : 'GGUF: INT-k and MX layers as lowbit tensor types (lowbit loads it, llama.cpp does not). Safetensors: int2/3/4/8 in the GPTQ checkpoint layout (AutoGPTQ, transformers), other layers as lowbit blobs, with the config and tokenizer inside (lowbit eval model.safetensors).'),
    ),
  );
  updateControls();
}

/** The perplexity-vs-bits chart of every run and allocation so far, for the Quantize and Mixed precision panels. */
function runsPlot(): HTMLElement {
  const base = runs[0]?.pplBefore ?? allocations[0]?.pplBefore;
  const any = runs.length + allocations.length > 0;
  return h('figure', {}, perplexityPlot(runs, base, allocations), h('figcaption', {}, any ? 'Each quantization run (#n) and allocation (An) is a point; the dashed line is the unquantized model.' : 'Run a quantization to add a point.'));
}

function renderRuns() {
  $('#q-plot').replaceChildren(runsPlot());
  $('#q-runs').replaceChildren(
    h('table', { id: 'runs-table' },
      h('caption', {}, 'Runs'),
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'settings'), h('th', {}, 'bits/weight'), h('th', {}, 'perplexity'), h('th', {}, 'time (s)'))),
      h('tbody', {}, ...runs.map((r, i) => h('tr', {}, h('td', {}, String(i + 1)), h('td', {}, r.label), h('td', { class: 'num' }, r.bitsPerWeight.toFixed(3)), h('td', { class: 'num' }, r.pplAfter.toFixed(4)), h('td', { class: 'num' }, r.secondsTotal.toFixed(2))))),
    ),
  );
}

function downloadButtons(p: string): HTMLElement {
  return h('div', { class: 'row' },
    h('button', { type: 'button', id: `${p}-download`, class: 'download', 'data-kind': 'gguf', onclick: () => void download(p, 'gguf') }, 'Download as GGUF'),
    h('button', { type: 'button', id: `${p}-download-st`, class: 'download secondary', 'data-kind': 'safetensors', onclick: () => void download(p, 'safetensors') }, 'Download as safetensors'),
  );
}

async function download(p: string, kind: 'gguf' | 'safetensors') {
  if (busy || !haveQuantized) return;
  busy = true;
  updateControls();
  $(`#${p}-stage`).textContent = `writing ${kind === 'gguf' ? 'GGUF' : 'safetensors'}...`;
  try {
    const bytes = kind === 'gguf' ? await quantizer.api.saveGguf() : await quantizer.api.saveSafetensors();
    const base = (summary?.name ?? 'model').replace(/\.(gguf|safetensors)$/i, '');
    const name = `${base}.${quantizedLabel.replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '').toLowerCase()}.${kind}`;
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
    const a = h('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    $(`#${p}-stage`).textContent = `saved ${name} (${fmtBytes(bytes.length)})`;
  } catch (e) {
    showError(`Saving failed. ${errorText(e)}`, `#${p}-error`);
  } finally {
    busy = false;
    updateControls();
  }
}

// ---------- Generate panel ----------

function generatePanel(): HTMLElement {
  const column = (id: string, title: string) =>
    h('div', { class: 'gen-col' }, h('h3', { id: `g-${id}-title` }, title), h('pre', { id: `g-${id}-text`, class: 'gen', 'aria-live': 'polite' }), h('div', { id: `g-${id}-stats`, class: 'status' }));
  return h('section', { id: 'panel-generate', role: 'tabpanel', 'aria-labelledby': 'tab-generate', hidden: true },
    h('p', { class: 'explain' }, 'The original model and the last quantized one continue the same prompt, side by side, token by token. Greedy (temperature 0) shows where quantization changes the most likely token; sampling with the same seed shows how the two drift apart.'),
    h('form', { class: 'grid', onsubmit: ((e: Event) => { e.preventDefault(); void runGenerate(); }) as EventListener },
      field('Prompt', h('input', { id: 'g-prompt', type: 'text', value: 'Once upon a time', size: 40 }), 'The start of a story; the models write what comes next.'),
      field('Tokens', h('input', { id: 'g-steps', type: 'number', min: 1, max: 512, value: 64 }), 'How many tokens each model adds (it stops early at end of text).'),
      field('Temperature', h('input', { id: 'g-temp', type: 'number', min: 0, max: 2, step: 0.1, value: 0 }), '0: greedy, always the most likely token. Above 0: sampled, higher is more random.'),
      field('Seed', h('input', { id: 'g-seed', type: 'number', min: 0, value: 1 }), 'The sampler\'s seed (both models get the same).'),
      taskActions('g', 'Generate', () => void stopGenerate()),
    ),
    h('div', { id: 'g-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { class: 'cols' }, column('orig', 'Original'), column('quant', 'Quantized')),
  );
}

async function runGenerate() {
  if (busy || !summary?.runnable) return;
  showError('', '#g-error');
  const prompt = ($('#g-prompt') as HTMLInputElement).value;
  const steps = Math.min(512, Math.max(1, Math.floor(Number(($('#g-steps') as HTMLInputElement).value) || 64)));
  const temperature = Math.max(0, Number(($('#g-temp') as HTMLInputElement).value) || 0);
  const seed = Math.floor(Number(($('#g-seed') as HTMLInputElement).value) || 0);
  const id = startTask('g');
  const both = haveQuantized;
  const total = steps * (both ? 2 : 1);
  let made = 0;
  const one = async (w: DemoWorker, col: string) => {
    if (w === original) await ensureOriginal();
    const out = $(`#g-${col}-text`);
    out.textContent = prompt;
    $(`#g-${col}-stats`).textContent = 'generating...';
    const r = await w.api.generateStream(prompt, { steps, temperature, seed }, proxy((text: string) => {
      out.textContent += text;
      if (id === runId) setProgress('g', ++made, total, `${made} / ${total} tokens`);
    }));
    const rate = r.decodeSeconds > 0 ? r.tokens / r.decodeSeconds : Number.NaN;
    const why = { eos: 'stopped at end of text', context: 'context full', steps: 'all tokens made', cancelled: 'cancelled' }[r.stopReason];
    $(`#g-${col}-stats`).textContent = `${r.tokens} tokens, ${Number.isFinite(rate) ? rate.toFixed(0) : '–'} tokens/s (${why})`;
    return r.stopReason;
  };
  try {
    const jobs = [one(original, 'orig')];
    if (both) {
      $('#g-quant-title').textContent = `Quantized (${quantizedLabel})`;
      jobs.push(one(quantizer, 'quant'));
    } else {
      $('#g-quant-text').textContent = '';
      $('#g-quant-stats').textContent = 'Quantize the model first (Quantize or Mixed precision panel).';
    }
    const stops = await Promise.all(jobs);
    setProgress('g', stops.includes('cancelled') ? made : total, total, stops.includes('cancelled') ? 'cancelled' : 'done');
  } catch (e) {
    showError(`Generation failed. ${errorText(e)}`, '#g-error');
  } finally {
    endTask('g');
  }
}

/** Generation yields between tokens, so a stop message reaches both workers without restarting them. */
async function stopGenerate() {
  if (!busy) return;
  ($('#g-cancel') as HTMLButtonElement).disabled = true;
  $('#g-stage').textContent = 'stopping...';
  await Promise.all([original.api.stopGenerate(), haveQuantized ? quantizer.api.stopGenerate() : undefined]);
}

// ---------- Formats panel ----------

function formatsPanel(): HTMLElement {
  return h('section', { id: 'panel-formats', role: 'tabpanel', 'aria-labelledby': 'tab-formats', hidden: true },
    h('p', { class: 'explain' }, 'Pick a number format and one weight matrix of the loaded model: see every value the format\'s elements can take, and how far each weight moves when the matrix is stored in it (nothing in the model changes here).'),
    h('form', { class: 'grid', onsubmit: ((e: Event) => { e.preventDefault(); void runFormat(); }) as EventListener },
      field('Format', h('select', { id: 'f-format' }, ...STUDY_FORMATS.map((f) => option(f, f, f === 'int4 g32'))), 'int-k with groups of 32 columns, NF4 (QLoRA\'s normal quantiles), llama.cpp blocks, or an OCP MX format.'),
      field('Weight matrix', h('select', { id: 'f-tensor' }), 'A linear layer of the loaded model (blk.N: transformer block N).'),
      taskActions('f', 'Quantize this matrix', cancelFormat),
    ),
    h('div', { id: 'f-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 'f-result' }),
  );
}

async function fillTensorChoices() {
  const names = await original.api.linearNames();
  const sel = $('#f-tensor') as HTMLSelectElement;
  sel.replaceChildren(...names.map((n) => option(n, n, n === 'blk.0.ffn_gate.weight')));
}

async function runFormat() {
  if (busy || !summary?.runnable) return;
  showError('', '#f-error');
  const format = ($('#f-format') as HTMLSelectElement).value as (typeof STUDY_FORMATS)[number];
  const tensor = ($('#f-tensor') as HTMLSelectElement).value;
  const id = startTask('f');
  ($('#f-progress') as HTMLProgressElement).removeAttribute('value'); // one call: no steps to count
  $('#f-stage').textContent = 'quantizing the matrix...';
  try {
    await ensureOriginal();
    const r = await original.api.formatStudy(format, tensor);
    if (id !== runId) return;
    setProgress('f', 1, 1, 'done');
    const fmtValue = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : String(Number(v.toPrecision(4))));
    $('#f-result').replaceChildren(
      h('div', { class: 'card', id: 'f-card', 'data-sqnr': r.sqnrDb, 'data-bits': r.bitsPerWeight },
        h('h3', {}, `${r.tensor} [${r.rows} × ${r.cols}] as ${r.format}`),
        h('dl', {},
          h('dt', {}, 'bits per weight'), h('dd', {}, `${r.bitsPerWeight.toFixed(3)} bits (elements and scales)`),
          h('dt', {}, 'signal to noise'), h('dd', { id: 'f-sqnr' }, `${r.sqnrDb.toFixed(2)} dB (10·log10 Σw² / Σ(ŵ−w)²; each extra bit adds about 6 dB)`),
          h('dt', {}, 'error'), h('dd', {}, `RMS ${r.rmsError.toExponential(3)}, largest ${r.maxAbsError.toExponential(3)} (weights' RMS: ${r.rmsWeight.toExponential(3)})`),
        ),
      ),
      h('div', { class: 'cols' },
        h('figure', {}, errorHistogram(r.hist), h('figcaption', {}, 'How far each weight moved: ŵ − w over the whole matrix.')),
        h('div', {},
          h('h4', {}, `Element values (${r.table.length} codes, smallest first)`),
          h('p', { class: 'explain' }, r.tableNote),
          h('div', { class: 'codes', id: 'f-codes' }, ...[...r.table].sort((a, b) => Number(Number.isNaN(a.value)) - Number(Number.isNaN(b.value)) || a.value - b.value || 0).map((c) => h('span', { title: `code ${c.code}` }, Number.isNaN(c.value) ? 'NaN' : fmtValue(c.value)))),
        ),
      ),
    );
  } catch (e) {
    if (id === runId) {
      showError(`Cannot quantize this matrix. ${errorText(e)}`, '#f-error');
      setProgress('f', 0, 1, '');
    }
  } finally {
    if (id === runId) endTask('f');
  }
}

/** The study is one call in the original worker: cancel replaces the worker, which reopens the model. */
function cancelFormat() {
  if (!busy) return;
  cancelled = true;
  runId++;
  restartOriginal();
  setProgress('f', 0, 1, 'cancelled');
  endTask('f');
}

// ---------- Mixed precision (allocator) panel ----------

let allocation: AllocateReport | undefined;
const allocations: AllocateReport[] = [];

function allocatePanel(): HTMLElement {
  const width = (b: number, on: boolean) => h('label', {}, h('input', { type: 'checkbox', class: 'a-bits', value: b, checked: on }), ` int${b}`);
  const block = (f: string) => h('label', {}, h('input', { type: 'checkbox', class: 'a-ggml', value: f }), ` ${f}`);
  return h('section', { id: 'panel-allocate', role: 'tabpanel', 'aria-labelledby': 'tab-allocate', hidden: true },
    h('p', { class: 'explain' }, 'Give each linear layer its own bit width under a size budget (CLADO). The allocator quantizes each layer alone at each candidate width, and pairs of layers in the same block together, measures how much the loss on calibration text rises, and then picks the widths with the smallest predicted loss rise that fit the budget, as an integer program solved exactly by HiGHS (compiled to WebAssembly, running in this tab\'s worker).'),
    h('form', { id: 'a-form', class: 'grid', onsubmit: ((e: Event) => { e.preventDefault(); void runAllocate(); }) as EventListener },
      h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Candidates per layer'),
        h('div', { class: 'row', id: 'a-widths' }, width(2, true), width(3, false), width(4, true), width(8, true)),
        h('div', { class: 'row', id: 'a-blocks' }, ...GGML_FORMATS.map(block)),
        h('small', {}, 'Either INT-k (symmetric, groups of 32: int-k costs k + 0.5 bits per weight) or llama.cpp blocks (q4_0 4.5, q4_1 5, q8_0 8.5 bits per weight; llama.cpp runs the result), not both. More candidates: more forward passes.')),
      field('Allocator', h('select', { id: 'a-method' },
        option('clado', 'CLADO: exact, with cross-layer terms', true), option('diagonal', 'diagonal: exact, single-layer terms only'), option('greedy', 'greedy: cheapest loss per bit first'), option('uniform', 'uniform: the largest single width that fits')),
      'CLADO and diagonal solve the integer program with HiGHS; greedy and uniform are the baselines it is compared against.'),
      field('Budget (bits per weight)', h('input', { id: 'a-budget', type: 'number', min: 2, max: 9, step: 0.25, value: 4 }), 'Average stored bits per weight over the allocated layers, scales included; between the smallest and largest candidate (2.5..8.5 for int2..int8). Budgets between two uniform widths are where an allocator can help.'),
      field('Cross-layer pairs', h('select', { id: 'a-pairs' }, option('block', 'pairs inside each block (the full method)', true), option('none', 'none: single layers only (fast)')), 'Pairs measure how two layers\' errors add up together; without them every pair is taken as independent.'),
      field('Calibration windows', h('input', { id: 'a-calib-windows', type: 'number', min: 1, max: 64, value: 4 }), 'Windows of 128 tokens of the embedded TinyStories train excerpt each loss change is measured on. Few windows give noisy loss changes (lowbit allocate uses 16): compare against uniform.'),
      field('Validation windows', h('input', { id: 'a-eval-windows', type: 'number', min: 1, max: 64, value: 4 }), 'Perplexity before and after on the first N windows of 256 tokens of the validation text.'),
      taskActions('a', 'Allocate and quantize', () => cancelQuantizer('a')),
    ),
    h('div', { id: 'a-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 'a-result' }),
  );
}

function readAllocateSettings(): AllocateSettings {
  const bits = [...document.querySelectorAll<HTMLInputElement>('.a-bits')].filter((c) => c.checked).map((c) => Number(c.value));
  const ggml = [...document.querySelectorAll<HTMLInputElement>('.a-ggml')].filter((c) => c.checked).map((c) => c.value as AllocateSettings['ggml'][number]);
  return {
    bits: ggml.length ? [] : bits,
    ggml,
    method: ($('#a-method') as HTMLSelectElement).value as AllocateSettings['method'],
    budgetBits: Number(($('#a-budget') as HTMLInputElement).value),
    pairs: ($('#a-pairs') as HTMLSelectElement).value as 'block' | 'none',
    calibWindows: Math.min(64, Math.max(1, Math.floor(Number(($('#a-calib-windows') as HTMLInputElement).value) || 2))),
    evalWindows: Math.min(64, Math.max(1, Math.floor(Number(($('#a-eval-windows') as HTMLInputElement).value) || 4))),
    ctx: 256,
  };
}

async function runAllocate() {
  if (busy || !summary?.runnable || !source) return;
  showError('', '#a-error');
  const s = readAllocateSettings();
  const intPicked = document.querySelectorAll('.a-bits:checked').length;
  if (s.ggml.length && intPicked) return showError('Pick INT-k widths or llama.cpp blocks as candidates, not both (uncheck one kind).', '#a-error');
  if (s.bits.length + s.ggml.length < 2) return showError('Pick at least two candidates.', '#a-error');
  if (!Number.isFinite(s.budgetBits)) return showError('The budget must be a number of bits per weight.', '#a-error');
  const id = startTask('a');
  try {
    await ensureQuantizer();
    const r = await quantizer.api.allocate(s, progressFor('a', id));
    allocation = r;
    allocations.push(r);
    setQuantized(r.label, r.settings.ggml.length > 0);
    setProgress('a', 1, 1, `done in ${(r.secondsMeasure + r.secondsSolve).toFixed(1)} s (measure and solve)`);
    renderAllocation();
  } catch (e) {
    if (!cancelled) showError(`Allocation failed. ${errorText(e)}`, '#a-error');
  } finally {
    endTask('a');
  }
}

function renderAllocation() {
  const r = allocation;
  if (!r) {
    allocations.length = 0;
    $('#a-result').replaceChildren();
    return;
  }
  const delta = ((r.pplAfter - r.pplBefore) / r.pplBefore) * 100;
  // blocks as rows, layer kinds as columns: where the bits went, at a glance
  const kinds = [...new Set(r.layers.map((l) => l.name.split('.').slice(2, -1).join('.')))];
  const blocks = [...new Set(r.layers.map((l) => l.name.split('.')[1]))];
  const at = new Map(r.layers.map((l) => [l.name, l.format]));
  const cell = (f: string | undefined) => h('td', { class: `fmt bits-${f ?? 'none'}` }, f ?? '');
  $('#a-result').replaceChildren(
    h('div', { class: 'card', id: 'a-last', 'data-ppl-before': r.pplBefore, 'data-ppl-after': r.pplAfter, 'data-bits': r.bitsPerWeight, 'data-formats': r.layers.map((l) => l.format).join(',') },
      h('h3', {}, r.label),
      h('dl', {},
        h('dt', {}, 'perplexity'), h('dd', {}, h('span', {}, r.pplBefore.toFixed(4)), ' → ', h('strong', { id: 'a-ppl-after' }, r.pplAfter.toFixed(4)), ` (${delta >= 0 ? '+' : ''}${delta.toFixed(2)} %, ± ${r.stderrAfter.toFixed(4)} std. error, ${r.tokens} tokens)`),
        h('dt', {}, 'bits per weight'), h('dd', { id: 'a-bits' }, `${r.bitsPerWeight.toFixed(3)} bits of the ${r.settings.budgetBits}-bit budget (reachable ${r.minBits.toFixed(2)}..${r.maxBits.toFixed(2)} bits)`),
        h('dt', {}, 'predicted loss rise'), h('dd', {}, `${r.predictedDeltaLoss.toFixed(4)} nats/token (the quadratic model's xᵀGx)`),
        h('dt', {}, 'solver'), h('dd', { id: 'a-solver' }, r.solver ? `HiGHS: ${r.solver}` : `${r.settings.method} heuristic (no solver)`),
        h('dt', {}, 'time'), h('dd', {}, `${r.secondsMeasure.toFixed(2)} s measuring (${r.evaluations} forward evaluations), ${r.secondsSolve.toFixed(2)} s solving`),
      ),
      h('div', { class: 'scroll' },
        h('table', { id: 'a-layers' },
          h('caption', {}, r.settings.ggml.length ? 'Chosen block type per layer (layers whose rows are not whole blocks of 32 stay f32 and are not listed)' : 'Chosen width per layer'),
          h('thead', {}, h('tr', {}, h('th', {}, 'block'), ...kinds.map((k) => h('th', {}, k)))),
          h('tbody', {}, ...blocks.map((b) => h('tr', {}, h('th', { scope: 'row' }, b), ...kinds.map((k) => cell(at.get(`blk.${b}.${k}.weight`)))))),
        ),
      ),
      downloadButtons('a'),
      h('small', { class: 'note' }, r.settings.ggml.length
        ? 'The quantized model is now the one the Generate and Accelerator panels use. GGUF: llama.cpp blocks, llama.cpp runs it (no safetensors layout for them).'
        : 'The quantized model is now the one the Generate and Accelerator panels use. GGUF: lowbit tensor types (lowbit loads it). Safetensors: the GPTQ checkpoint layout for int2/3/4/8.'),
    ),
    h('div', { class: 'cols' },
      h('div', { id: 'a-plot' }, runsPlot()),
      h('div', { class: 'scroll' },
        h('table', { id: 'a-runs' },
          h('caption', {}, 'Allocations'),
          h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'allocator and budget'), h('th', {}, 'pairs'), h('th', {}, 'bits/weight'), h('th', {}, 'perplexity'))),
          h('tbody', {}, ...allocations.map((x, i) => h('tr', {}, h('td', {}, `A${i + 1}`), h('td', {}, x.label), h('td', {}, x.settings.pairs), h('td', { class: 'num' }, x.bitsPerWeight.toFixed(3)), h('td', { class: 'num' }, x.pplAfter.toFixed(4))))),
        ),
      ),
    ),
  );
  renderRuns();
  updateControls();
}

// ---------- Accelerator (sim) panel ----------

let simWorker: DemoWorker | undefined;

const ACCELS: [string, string][] = [
  ['stripes', 'Stripes: bit-serial activations, per-layer precision'],
  ['tartan', 'Tartan: bit-serial activations and weights (fully connected layers)'],
  ['loom', 'Loom: bit-serial activations and weights'],
  ['dpred', 'DPRed: per-group dynamic activation precision'],
  ['laconic', 'Laconic: only the non-zero terms of weight × activation'],
  ['tactical', 'Bit-Tactical: skips zero weights, scheduled'],
];

function simPanel(): HTMLElement {
  return h('section', { id: 'panel-sim', role: 'tabpanel', 'aria-labelledby': 'tab-sim', hidden: true },
    h('p', { class: 'explain' }, 'How much faster would the loaded model run on a bit-serial accelerator, whose time per multiply grows with the bits it processes? Each linear layer runs on real activations (the model reads calibration text, the inputs are quantized to 8 bits) and the model\'s stored weights; the cycle model (@lowbit/sim) counts cycles against a 16-bit bit-parallel baseline, layer by layer.'),
    h('p', {}, 'Model: ', h('span', { id: 's-model' })),
    h('form', { class: 'grid', onsubmit: ((e: Event) => { e.preventDefault(); void runSim(); }) as EventListener },
      field('Accelerator', h('select', { id: 's-accel' }, ...ACCELS.map(([v, t]) => option(v, t, v === 'loom'))), 'Stripes needs only activations; the others read the weights\' stored precision or codes, so quantize the model first (int-k, q4_0/q4_1/q8_0; MX and NF4 codes are table indices, not integers).'),
      field('Tokens', h('select', { id: 's-seq' }, option('32', '32 tokens'), option('64', '64 tokens', true), option('128', '128 tokens')), 'Tokens of the calibration text each layer multiplies (the GEMM\'s rows).'),
      taskActions('s', 'Simulate', cancelSim),
    ),
    h('div', { id: 's-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 's-result' }),
  );
}

async function runSim() {
  if (busy || !summary?.runnable || !source) return;
  showError('', '#s-error');
  const accel = ($('#s-accel') as HTMLSelectElement).value;
  const seq = Number(($('#s-seq') as HTMLSelectElement).value);
  const id = startTask('s');
  simWorker ??= startWorker('sim');
  const w = simWorker;
  try {
    const label = haveQuantized ? quantizedLabel : 'original (f32)';
    if (haveQuantized) {
      // the quantized model's file holds its integer codes: the sim worker opens that file
      setProgress('s', 0, 1, 'writing the quantized model as GGUF');
      const bytes = await quantizer.api.saveGguf();
      if (id !== runId) return; // cancelled meanwhile
      await w.api.openFile(new Blob([bytes as Uint8Array<ArrayBuffer>]), 'quantized.gguf');
    } else {
      await openIn(w, source);
    }
    const r = await w.api.simulate(accel, seq, label, progressFor('s', id));
    setProgress('s', 1, 1, `done in ${r.seconds.toFixed(1)} s`);
    renderSim(r);
  } catch (e) {
    if (id === runId) showError(`Simulation failed. ${errorText(e)}`, '#s-error');
  } finally {
    // a cancelled run's late end must not end the run that followed it
    if (id === runId) endTask('s');
  }
}

function cancelSim() {
  if (!busy) return;
  cancelled = true;
  runId++;
  simWorker?.terminate();
  simWorker = undefined;
  setProgress('s', 0, 1, 'cancelled');
  endTask('s');
}

function renderSim(r: SimReport) {
  $('#s-result').replaceChildren(
    h('div', { class: 'card', id: 's-card', 'data-speedup': r.speedup, 'data-layers': r.layers.length },
      h('h3', {}, `${r.modelLabel} on ${r.accel}`),
      h('dl', {},
        h('dt', {}, 'speedup'), h('dd', { id: 's-speedup' }, `${r.speedup.toFixed(3)}× over the 16-bit bit-parallel baseline (whole model, ${r.layers.length} linear layers)`),
        h('dt', {}, 'MAC utilisation'), h('dd', {}, `${(100 * r.mac_utilisation).toFixed(1)} % of lane-cycles do real multiply-adds`),
        h('dt', {}, 'workload'), h('dd', {}, r.profile),
      ),
    ),
    h('div', { class: 'cols' },
      h('figure', {}, speedupBars(r.layers, r.speedup), h('figcaption', {}, 'Speedup per linear layer (bars), the whole model (red line) and the baseline (1×, dashed). Hover a bar for its activation and weight bits.')),
      h('div', { class: 'scroll' },
        h('table', { id: 's-layers' },
          h('thead', {}, h('tr', {}, h('th', {}, 'layer'), h('th', {}, 'activation bits'), h('th', {}, 'weight bits'), h('th', {}, 'speedup'), h('th', {}, 'MAC utilisation'))),
          h('tbody', {}, ...r.layers.map((l) => h('tr', {}, h('td', {}, l.name), h('td', { class: 'num' }, String(l.act_bits)), h('td', { class: 'num' }, String(l.wgt_bits)), h('td', { class: 'num' }, `${l.speedup.toFixed(2)}×`), h('td', { class: 'num' }, `${(100 * l.mac_utilisation).toFixed(1)} %`)))),
        ),
      ),
    ),
  );
}

// ---------- Kernels panel ----------

let bench: DemoWorker | undefined;
let benchId = 0;

/** What this browser offers the kernels: cores, isolation (shared memory), relaxed SIMD is probed in the worker. */
function browserSupport(): { cores: number; isolated: boolean; shared: boolean } {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  return { cores: navigator.hardwareConcurrency || 1, isolated, shared: isolated && typeof SharedArrayBuffer !== 'undefined' };
}

function kernelsPanel(): HTMLElement {
  const env = browserSupport();
  const maxThreads = Math.max(1, Math.min(16, env.cores));
  const threadChoices = [1, ...poolSizes(maxThreads)];
  return h('section', { id: 'panel-kernels', role: 'tabpanel', 'aria-labelledby': 'tab-kernels', hidden: true },
    h('p', { class: 'explain' }, 'The matrix-vector product (GEMV) is most of the work of generating a token. Run it here on each WebAssembly build of the kernels (scalar; SIMD; relaxed SIMD where this browser has it), on 2..N threads sharing one WebAssembly memory where the page may share memory, and in the kernels\' JavaScript reference, on a random matrix held in WebAssembly memory, in a separate worker. Memory-bound: GB/s of weights read is the number to compare.'),
    h('table', { class: 'facts', id: 'k-env' },
      h('tr', {}, h('th', { scope: 'row' }, 'logical cores'), h('td', {}, `${env.cores} (navigator.hardwareConcurrency)`)),
      h('tr', {}, h('th', { scope: 'row' }, 'cross-origin isolated'), h('td', { id: 'k-isolated' }, env.isolated ? 'yes: SharedArrayBuffer available, the threaded builds run' : 'no: no SharedArrayBuffer, so one thread per worker (the server must send COOP/COEP headers; see the README)')),
      h('tr', {}, h('th', { scope: 'row' }, 'WebAssembly builds'), h('td', { id: 'k-builds' }, 'run the benchmark to probe scalar, SIMD and relaxed SIMD')),
    ),
    h('form', { class: 'grid', onsubmit: ((e: Event) => { e.preventDefault(); void runBench(); }) as EventListener },
      field('Weights', h('select', { id: 'k-format' }, option('f32', 'f32 (32 bits/weight)'), option('q8_0', 'q8_0 (8.5 bits/weight)', true), option('q4_0', 'q4_0 (4.5 bits/weight)')), 'Storage of the matrix; the quantized ones quantize x to int8 per block of 32, as llama.cpp does.'),
      field('Matrix', h('select', { id: 'k-size' }, option('256', '256 × 256 (quick)'), option('1024', '1024 × 1024', true), option('4096', '4096 × 4096 (a 7B model\'s layer)')), 'Rows × columns.'),
      field('Time per build', h('select', { id: 'k-ms' }, option('100', '0.1 s'), option('500', '0.5 s', true), option('2000', '2 s')), 'Each build repeats the product for this long.'),
      field('Threads (up to)', h('select', { id: 'k-threads', disabled: !env.shared }, ...threadChoices.map((t) => option(String(t), t === 1 ? '1 (no pool)' : `${poolSizes(t).join(', ')}`, env.shared && t === maxThreads))), env.shared ? 'Pools of 2, 4, ... threads split the rows; the page\'s own worker takes part in each.' : 'Needs a cross-origin isolated page (npm run demo serves one).'),
      taskActions('k', 'Run the benchmark', cancelBench),
    ),
    h('div', { id: 'k-error', class: 'error', role: 'alert', hidden: true }),
    h('div', { id: 'k-result' }),
  );
}

/** Three significant digits: the JS reference's rates are thousands of times below the kernels'. */
const fmtRate = (v: number) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3));

const BUILD_NAMES: Record<string, string> = {
  scalar: 'WebAssembly scalar', simd: 'WebAssembly SIMD', relaxed: 'WebAssembly relaxed SIMD',
  'simd-threads': 'WebAssembly SIMD, threads', 'relaxed-threads': 'WebAssembly relaxed SIMD, threads',
  js: 'JavaScript reference',
};

async function runBench() {
  const btn = $('#k-run') as HTMLButtonElement;
  if (btn.disabled) return;
  showError('', '#k-error');
  btn.disabled = true;
  ($('#k-cancel') as HTMLButtonElement).disabled = false;
  const format = ($('#k-format') as HTMLSelectElement).value as 'f32' | 'q8_0' | 'q4_0';
  const n = Number(($('#k-size') as HTMLSelectElement).value);
  const ms = Number(($('#k-ms') as HTMLSelectElement).value);
  const threads = browserSupport().shared ? Number(($('#k-threads') as HTMLSelectElement).value) : 1;
  const id = ++benchId;
  setProgress('k', 0, 1, 'starting the benchmark worker...');
  try {
    bench ??= startWorker('bench');
    const rows = await bench.api.gemvBench(format, n, n, ms, threads, proxy((done: number, total: number, what: string) => {
      if (id === benchId) setProgress('k', done, total, done < total - 1 ? `timing ${what} (${done + 1} / ${total - 1})` : 'done');
    }));
    if (id !== benchId) return;
    const js = rows.find((r) => r.variant === 'js');
    const single = rows.filter((r) => r.threads === 1 && r.variant !== 'js');
    $('#k-builds').textContent = single.map((r) => `${r.variant}: ${r.supported ? 'yes' : 'no'}`).join('; ') + (single.find((r) => r.variant === 'relaxed' && !r.supported) ? ' (without relaxed SIMD the runtime falls back to SIMD)' : '');
    $('#k-result').replaceChildren(h('div', { class: 'wide' },
      h('table', { id: 'bench-table' },
        h('caption', {}, `GEMV of a ${n} × ${n} ${format} matrix, ${ms / 1000} s per build`),
        h('thead', {}, h('tr', {}, h('th', {}, 'build'), h('th', {}, 'threads'), h('th', {}, 'GB/s'), h('th', {}, 'GFLOP/s'), h('th', {}, '× JS reference'), h('th', {}, 'calls'), h('th', {}, 'max diff vs JS'))),
        h('tbody', {}, ...rows.map((r) => r.supported
          ? h('tr', { 'data-variant': r.variant, 'data-threads': r.threads, 'data-gbps': r.gbPerS }, h('td', {}, BUILD_NAMES[r.variant]), h('td', { class: 'num' }, String(r.threads)), h('td', { class: 'num' }, fmtRate(r.gbPerS)), h('td', { class: 'num' }, fmtRate(r.gflops)), h('td', { class: 'num' }, js ? `${(r.gbPerS / js.gbPerS).toFixed(1)}×` : ''), h('td', { class: 'num' }, String(r.calls)), h('td', { class: 'num' }, r.relDiff.toExponential(1)))
          : h('tr', { 'data-variant': r.variant, 'data-threads': r.threads }, h('td', {}, BUILD_NAMES[r.variant]), h('td', { class: 'num' }, String(r.threads)), h('td', { colspan: 5 }, `not available in this browser: ${r.why}`)))),
      )),
      h('p', { class: 'explain' }, 'JavaScript reference: the kernels\' test oracle, written for clarity, not speed. GB/s: bytes of weights read per second (10⁹ bytes). max diff vs JS: the largest difference from the JavaScript reference\'s result, relative to its largest element (summation order differs between builds; relaxed SIMD may fuse multiply-adds).'),
    );
  } catch (e) {
    if (id === benchId) {
      showError(`The benchmark failed. ${errorText(e)}`, '#k-error');
      setProgress('k', 0, 1, '');
    }
  } finally {
    if (id === benchId) {
      btn.disabled = false;
      ($('#k-cancel') as HTMLButtonElement).disabled = true;
    }
  }
}

/** The benchmark loops without taking messages: cancel ends its worker; the next run starts a new one. */
function cancelBench() {
  benchId++;
  bench?.terminate();
  bench = undefined;
  setProgress('k', 0, 1, 'cancelled');
  ($('#k-run') as HTMLButtonElement).disabled = false;
  ($('#k-cancel') as HTMLButtonElement).disabled = true;
}

// ---------- start ----------

document.body.append(
  h('header', {}, h('h1', {}, 'lowbit: quantize a model in your browser'), h('p', {}, 'Everything runs in this tab (WebAssembly in Web Workers); no file leaves your machine.')),
  tabs(),
  h('div', { id: 'error', class: 'error', role: 'alert', hidden: true }),
  h('main', {}, modelPanel(), quantizePanel(), allocatePanel(), generatePanel(), formatsPanel(), kernelsPanel(), simPanel()),
);
selectPanel('model');
renderRuns();
updateControls();
