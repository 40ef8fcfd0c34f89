// The evaluation library on llama2.c's stories260K (from the repository's fixtures): perplexity under three configs
// from one prefill per window, with the paired report, from the eval tarball and what it installs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { evalMarkdown, evalTables, loadRuntimeEngine, runEval } from '@semanticache/eval';

// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by tools/pack-check.mjs for its fixtures, not a turbo task
const dir = path.join(process.env.PACK_CHECK_REPO, 'fixtures', 'stories260K');
const text = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'))
  .cases.map((c) => c.expected)
  .join('\n');
const engine = await loadRuntimeEngine({
  format: 'llama2c',
  file: path.join(dir, 'stories260K.bin'),
  tokenizer: path.join(dir, 'tok512.bin'),
  label: 'stories260K',
});
try {
  const settings = {
    tasks: ['ppl'],
    policies: ['full', 'snapkv', 'semanticache:paper'],
    ratios: [0.5],
    context: 96,
    target: 16,
    windows: 2,
    lengths: [],
    depths: [],
    cases: 1,
    seed: 0,
    queryAware: false,
    reference: 'semanticache:paper',
  };
  const steps = [];
  const results = await runEval(engine, text, settings, {
    signal: new AbortController().signal,
    onStart: () => {},
    onStep: (detail) => steps.push(detail),
  });
  assert.equal(steps.length, 2 * 3);
  assert.deepEqual(
    results.perplexity.map((p) => [p.config.label, p.windows, p.tokens]),
    [
      ['full', 2, 32],
      ['snapkv@0.5', 2, 32],
      ['semanticache:paper@0.5', 2, 32],
    ],
  );
  for (const p of results.perplexity) assert.ok(Number.isFinite(p.ppl) && p.ppl > 1, `${p.config.label}: ${p.ppl}`);
  assert.ok(results.perplexity[1].keptFraction < 0.6, 'snapkv kept more than its budget');
  const markdown = evalMarkdown(results, evalTables(results));
  assert.ok(markdown.includes('Paired comparison: ppl against semanticache:paper'), markdown);
  console.log(results.perplexity.map((p) => `${p.config.label} ppl ${p.ppl.toFixed(2)}`).join(', '));
} finally {
  await engine.dispose();
}
