// llama2.c's stories260K (from the repository's fixtures) through onnxruntime-node and the native kernel, greedy:
// the text must start like llama2.c's own run; then a session compressed by the SemantiCache policy generates too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '@semanticache/runtime';

// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by tools/pack-check.mjs for its fixtures, not a turbo task
const dir = path.join(process.env.PACK_CHECK_REPO, 'fixtures', 'stories260K');
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')).cases.find(
  (c) => c.name === 'greedy',
);
const model = await loadModel(path.join(dir, 'stories260K.bin'));
const tok = model.tokenizer;
const ids = [...expected.prompt_tokens];
for await (const ev of model.createSession().generate(expected.prompt_tokens, { maxTokens: 40, temperature: 0 })) {
  if (ev.finishReason !== 'eos') ids.push(ev.tokenId);
}
const text = tok.decode(ids);
assert.ok(
  text.length > 40 && expected.expected.startsWith(text),
  `greedy text differs from llama2.c: ${JSON.stringify(text)}`,
);

// the SemantiCache policy after the prompt's prefill (chunker, gsc-cluster, merge, kv-cache underneath)
const session = model.createSession({
  policy: { name: 'semanticache', budget: { ratio: 0.5 }, options: { sinkTokens: 2, recentWindow: 4 } },
});
let streamed = '';
for await (const ev of session.generate(tok.encode(expected.expected.slice(0, 300)), {
  maxTokens: 10,
  temperature: 0,
})) {
  streamed += ev.text;
}
const { bytes, compressions } = session.stats();
assert.ok(
  streamed.length > 0 && compressions === 1 && bytes.current < 0.6 * bytes.full,
  JSON.stringify({ bytes, compressions }),
);
await model.dispose();
console.log(
  `greedy: ${JSON.stringify(text.slice(0, 40))}…; semanticache@0.5: ${bytes.current} of ${bytes.full} KV bytes`,
);
