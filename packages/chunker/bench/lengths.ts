// Chunk-length distribution on a text file, used to choose DEFAULT_MIN_LENGTH / DEFAULT_MAX_LENGTH.
// Usage: pnpm tsx bench/lengths.ts <file.txt | -> [maxChars]   (reads stdin for "-")
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { chunk, chunkLengths, type DelimiterSet, delimitersFromTokenizerJson, TokenFlag } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const tokenizerPath = join(here, '..', '..', 'model-demo', 'weights', 'tokenizer.json');
const [file = '-', maxCharsArg = '4000000'] = process.argv.slice(2);
const text = readFileSync(file === '-' ? 0 : file, 'utf8').slice(0, Number(maxCharsArg));

const json = JSON.parse(readFileSync(tokenizerPath, 'utf8'));
const tokenizer = new Tokenizer(json, {});
// Encode per paragraph: the reference encoder is slow on one multi-megabyte string.
const ids: number[] = [];
for (const paragraph of text.split(/(?<=\n)/)) {
  if (paragraph.length > 0)
    for (const id of tokenizer.encode(paragraph, { add_special_tokens: false }).ids) ids.push(id);
}
const idArray = Uint32Array.from(ids);

const percentiles = (values: Uint32Array, ps: number[]) => {
  const sorted = Uint32Array.from(values).sort();
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
};

/** Lengths of the segments between delimiter-run ends (chunking with no bounds at all). */
function naturalLengths(set: DelimiterSet): Uint32Array {
  const ends = chunk(idArray, set, { minLength: 1, maxLength: 0xffffffff });
  return chunkLengths(ends);
}

console.log(`${text.length} chars, ${idArray.length} tokens (demo tokenizer)`);
const ps = [5, 10, 25, 50, 75, 90, 95, 99];
for (const level of ['sentence', 'clause'] as const) {
  const set = delimitersFromTokenizerJson(json, { level });
  const lengths = naturalLengths(set);
  const counts = [1, 2, 3, 4, 5].map((k) => lengths.filter((l) => l <= k).length / lengths.length);
  console.log(
    `${level}: ${lengths.length} natural segments, mean ${(idArray.length / lengths.length).toFixed(1)}; ` +
      `p${ps.join('/p')} = ${percentiles(lengths, ps).join('/')}; ` +
      `share ≤1..5 tokens: ${counts.map((c) => (100 * c).toFixed(1) + '%').join(' ')}`,
  );
  console.log(
    '| minLength | maxLength | chunks | mean | p50 | p95 | chunks ending at a delimiter | sentences kept whole | other cuts at clause mark / word boundary / inside a word |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const natural = chunk(idArray, set, { minLength: 1, maxLength: 0xffffffff });
  const naturalEnd = new Uint8Array(idArray.length + 1);
  for (const end of natural) naturalEnd[end] = 1;
  for (const [minLength, maxLength] of [
    [1, 32],
    [2, 32],
    [4, 32],
    [4, 48],
    [4, 64],
    [8, 64],
    [4, 96],
    [4, 128],
  ]) {
    const offsets = chunk(idArray, set, { minLength, maxLength });
    const lengths = chunkLengths(offsets);
    let atDelimiter = 0;
    const otherCuts = [0, 0, 0];
    for (let c = 1; c < offsets.length; c++) {
      const end = offsets[c];
      atDelimiter += naturalEnd[end];
      if (naturalEnd[end]) continue;
      const before = set.flags[idArray[end - 1]];
      const after = set.flags[idArray[end]];
      if (before & (TokenFlag.WEAK | TokenFlag.DELIMITER)) otherCuts[0]++;
      else if (before & TokenFlag.SPACE_AFTER || after & TokenFlag.SPACE_BEFORE) otherCuts[1]++;
      else otherCuts[2]++;
    }
    // A natural segment is kept whole when no chunk boundary falls strictly inside it.
    const boundary = new Uint8Array(idArray.length + 1);
    for (const end of offsets) boundary[end] = 1;
    let whole = 0;
    for (let s = 1; s < natural.length; s++) {
      let cut = false;
      for (let i = natural[s - 1] + 1; i < natural[s] && !cut; i++) cut = boundary[i] === 1;
      if (!cut) whole++;
    }
    const [p50, p95] = percentiles(lengths, [50, 95]);
    console.log(
      `| ${minLength} | ${maxLength} | ${lengths.length} | ${(idArray.length / lengths.length).toFixed(1)} | ${p50} | ${p95} | ` +
        `${((100 * atDelimiter) / lengths.length).toFixed(1)}% | ${((100 * whole) / (natural.length - 1)).toFixed(1)}% | ` +
        `${otherCuts.join(' / ')} |`,
    );
  }
}
const delimiterIds = delimitersFromTokenizerJson(json).flags.filter((f) => f & TokenFlag.DELIMITER).length;
console.log(`sentence-level delimiter ids in the demo vocabulary: ${delimiterIds}`);
