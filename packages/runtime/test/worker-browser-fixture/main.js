// Page of the browser runtime-worker test, bundled by Vite: the runtime runs in the worker that
// createRuntimeWorker starts; the embedded model and text come from @lowbit/data's URLs, which Vite
// emits as assets. The page reports its inputs and outputs; the test recomputes them in Node.
//   ?threads=2  matmuls split over a KernelPool inside the runtime worker (the page is served
//               cross-origin isolated, which shared WebAssembly memory needs)
//   ?missing    a worker script that is not there: calls must reject, not hang
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { callback, createRuntimeWorker, transferBytes } from '@lowbit/runtime/browser';

const params = new URLSearchParams(location.search);
const errorInfo = (e) => ({ name: e.name, code: e.code, message: e.message });

async function scenario() {
  const prompt = 'Once upon a time';
  const steps = 32;
  const ppl = { ctx: 64, maxWindows: 1 };
  const threads = Number(params.get('threads') ?? 1);
  const { api, terminate } = createRuntimeWorker();
  try {
    const story = (await (await fetch(validTextUrl)).text()).split('\n').find((l) => l.trim().length > 0);

    // 1. by URL: the worker fetches the model itself
    const configByUrl = await api.load(defaultModelUrl.href, { threads });
    const info = await api.info();
    const ids = await api.encode(story);
    const decoded = await api.decode(ids.slice(1));

    // 2. by bytes, moved (not copied) into the worker: the page's buffer is detached afterwards
    const bytes = new Uint8Array(await (await fetch(defaultModelUrl)).arrayBuffer());
    const modelBytes = bytes.byteLength;
    const configByBytes = await api.load(transferBytes(bytes), { name: 'stories260K.gguf', threads });
    const streamed = [];
    const gen = await api.generate(prompt, { steps, stopAtEos: false }, callback((id, text) => void streamed.push({ id, text })));
    const progress = [];
    const perplexity = await api.perplexity(story, ppl, callback((done, total) => void progress.push([done, total])));
    const loaded = await api.info();

    let error;
    await api.decode([99999]).catch((e) => {
      error = errorInfo(e);
    });
    await api.unload();
    return {
      threads,
      isolated: self.crossOriginIsolated,
      variant: info.kernels,
      urlModel: info.model,
      modelName: loaded.model,
      configByUrl,
      configByBytes,
      modelBytes,
      bytesAfterTransfer: bytes.byteLength,
      story,
      ids,
      decoded,
      prompt,
      steps,
      tokens: gen.tokens,
      text: gen.text,
      streamed,
      ppl,
      perplexity,
      progress,
      error,
    };
  } finally {
    terminate();
  }
}

async function missingWorker() {
  const { api, terminate } = createRuntimeWorker({ url: new URL('./no-such-worker.js', location.href) });
  try {
    const early = api.load(defaultModelUrl.href).then(() => 'resolved', errorInfo);
    await new Promise((ok) => setTimeout(ok, 500));
    const late = await api.info().then(() => 'resolved', errorInfo);
    return { early: await early, late };
  } finally {
    terminate();
  }
}

try {
  window.result = await (params.has('missing') ? missingWorker() : scenario());
} catch (e) {
  window.result = { error: { message: String(e?.stack || e) }, failed: true };
}
document.getElementById('out').textContent = JSON.stringify(window.result);
