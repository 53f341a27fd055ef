// Page of the browser runtime-worker test, bundled by Vite: the runtime runs in the worker that
// createRuntimeWorker starts; the embedded model and text come from @lowbit/data's URLs, which Vite
// emits as assets. The page reports its inputs and outputs; the test recomputes them in Node.
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { callback, createRuntimeWorker, transferBytes } from '@lowbit/runtime/browser';

const prompt = 'Once upon a time';
const steps = 32;
const ppl = { ctx: 64, maxWindows: 1 };
// ?threads=2: matmuls split over a KernelPool inside the runtime worker (the page is served
// cross-origin isolated, which shared WebAssembly memory needs)
const threads = Number(new URLSearchParams(location.search).get('threads') ?? 1);
const { api, terminate } = createRuntimeWorker();
try {
  const story = (await (await fetch(validTextUrl)).text()).split('\n').find((l) => l.trim().length > 0);

  // 1. by URL: the worker fetches the model itself
  const byUrl = await api.load(defaultModelUrl.href, { threads });
  const info = await api.info();
  const ids = await api.encode(story);
  const decoded = await api.decode(ids.slice(1));

  // 2. by bytes, moved (not copied) into the worker: the page's buffer is detached afterwards
  const bytes = new Uint8Array(await (await fetch(defaultModelUrl)).arrayBuffer());
  const modelBytes = bytes.byteLength;
  const byBytes = await api.load(transferBytes(bytes), { name: 'stories260K.gguf', threads });
  const streamed = [];
  const gen = await api.generate(prompt, { steps, stopAtEos: false }, callback((id, text) => void streamed.push({ id, text })));
  const progress = [];
  const p = await api.perplexity(story, ppl, callback((done, total) => void progress.push([done, total])));

  const loaded = await api.info();
  let error;
  try {
    await api.decode([99999]);
  } catch (e) {
    error = { name: e.name, code: e.code, message: e.message };
  }
  await api.unload();
  window.result = {
    threads,
    isolated: self.crossOriginIsolated,
    variant: info.kernels,
    modelName: loaded.model,
    urlModel: info.model,
    configByUrl: byUrl,
    configByBytes: byBytes,
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
    perplexity: p,
    progress,
    error,
  };
} catch (e) {
  window.result = { error: { message: String(e?.stack || e) }, failed: true };
} finally {
  terminate();
}
document.getElementById('out').textContent = JSON.stringify(window.result);
