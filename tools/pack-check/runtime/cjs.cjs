// require() and the worker thread (dist/worker.cjs must be in the tarball): the same greedy start.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { WorkerModel } = require('@semanticache/runtime');

async function main() {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: set by tools/pack-check.mjs for its fixtures, not a turbo task
  const dir = path.join(process.env.PACK_CHECK_REPO, 'fixtures', 'stories260K');
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')).cases.find(
    (c) => c.name === 'greedy',
  );
  const model = await WorkerModel.load(path.join(dir, 'stories260K.bin'));
  const session = await model.createSession();
  const ids = [...expected.prompt_tokens];
  for await (const ev of session.generate(expected.prompt_tokens, { maxTokens: 24, temperature: 0 })) {
    if (ev.finishReason !== 'eos') ids.push(ev.tokenId);
  }
  const text = await model.decode(ids);
  assert.ok(
    text.length > 20 && expected.expected.startsWith(text),
    `worker greedy text differs: ${JSON.stringify(text)}`,
  );
  await model.dispose();
  console.log(`worker greedy: ${JSON.stringify(text.slice(0, 48))}…`);
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
