// Where one decode step's time goes on the demo model, 1 thread (ORT and the attention kernel): ORT's layer graphs,
// ORT's LM head, the attention kernel calls, and the rest (JavaScript: cache appends, tensors, sampling). Each part
// is timed around its calls; the step is timed whole. Prints the means over the measured steps.
//   pnpm exec tsx bench/step-profile.ts -- --depth 16 --weights int4
//   pnpm exec tsx bench/step-profile.ts -- --depth 8000 --weights float32 --policy semanticache
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setThreads } from '@semanticache/proportional-attention';
import type * as ort from 'onnxruntime-node';
import { type CachePolicy, loadModel, type WeightFormat } from '../src/index.js';
import { argmax } from '../src/sampler.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const depth = Number(arg('depth', '16'));
const weightFormat = arg('weights', 'float32') as WeightFormat;
const policy: CachePolicy =
  arg('policy', 'full') === 'semanticache' ? { name: 'semanticache', budget: { ratio: 0.75 } } : { name: 'full' };
const steps = Number(arg('steps', '48'));

setThreads(1);
const model = await loadModel(path.resolve(here, '..', '..', 'model-demo', 'weights'), {
  intraOpThreads: 1,
  weightFormat,
});
const spent = { layers: 0, head: 0, kernel: 0 };
const timed = (session: ort.InferenceSession, part: 'layers' | 'head') => {
  const run = session.run.bind(session);
  session.run = (async (...a: Parameters<typeof run>) => {
    const t = performance.now();
    const out = await run(...a);
    spent[part] += performance.now() - t;
    return out;
  }) as typeof session.run;
};
// the sessions are private to the transformer: reached here only to time them
const sessions = model.transformer as unknown as {
  first: ort.InferenceSession;
  mid: (ort.InferenceSession | { post: ort.InferenceSession; pre: ort.InferenceSession })[];
  last: ort.InferenceSession;
  head: ort.InferenceSession;
};
for (const s of [sessions.first, sessions.last, ...sessions.mid.flatMap((m) => ('post' in m ? [m.post, m.pre] : [m]))])
  timed(s, 'layers');
timed(sessions.head, 'head');
const prefill = model.kernel.prefill;
model.kernel.prefill = (a) => {
  const t = performance.now();
  const out = prefill(a);
  spent.kernel += performance.now() - t;
  return out;
};

const tokenizer = model.tokenizer;
if (!tokenizer) throw new Error('the demo model has no tokenizer');
const ids = tokenizer.encode(readFileSync(path.join(here, 'corpus.txt'), 'utf8')).slice(0, depth + 1);
if (ids.length < depth + 1) throw new RangeError(`--depth ${depth}: the corpus has ${ids.length} tokens`);
const session = model.createSession({ policy, kvDtype: 'float16' });
if (depth > 0) await session.prefill(Int32Array.from(ids.slice(0, depth)));
if (policy.name !== 'full') session.compress();
let logits = await session.decodeStep(ids[depth]);
for (let i = 0; i < 8; i++) logits = await session.decodeStep(argmax(logits)); // warm-up
spent.layers = spent.head = spent.kernel = 0;
const t0 = performance.now();
for (let i = 0; i < steps; i++) logits = await session.decodeStep(argmax(logits));
const step = (performance.now() - t0) / steps;
const per = (x: number) => (x / steps).toFixed(2);
console.log(
  `depth ${depth}, ${weightFormat} weights, ${policy.name}: ${step.toFixed(2)} ms/token (${(1000 / step).toFixed(1)} tok/s); ` +
    `ORT layers ${per(spent.layers)} ms, ORT head ${per(spent.head)} ms, attention kernel ${per(spent.kernel)} ms, ` +
    `rest ${per(step * steps - spent.layers - spent.head - spent.kernel)} ms; ` +
    `KV ${(session.stats().bytes.current / 1e6).toFixed(1)} MB`,
);
session.dispose();
await model.dispose();
