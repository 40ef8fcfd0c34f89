import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunk, chunkLengths, DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH } from './chunk.js';
import { decodeVocabulary } from './decode.js';
import { type DelimiterSet, delimitersFromTokenizerJson, delimitersFromVocabulary, TokenFlag } from './delimiters.js';
import {
  CODE,
  DEMO_TOKENIZER_PATH,
  encodeTok512,
  hfTokenizer,
  JSON_TEXT,
  loadJson,
  PROSE,
  QWEN3_TOKENIZER_PATH,
  readTok512,
} from './test-support/fixtures.js';

// A toy vocabulary: one symbol per id, written as space-separated symbols in the tests.
const SYMBOLS: Record<string, string> = {
  w: 'w',
  W: ' w',
  '.': '.',
  ',': ',',
  NL: '\n',
  Q: '"',
  OQ: ' "',
  ')': ')',
  '."': '."',
  SP: '  ',
  '?': '?',
};
const NAMES = Object.keys(SYMBOLS);
const VOCAB = NAMES.map((name) => SYMBOLS[name]);
const sentence = delimitersFromVocabulary(VOCAB);
const clause = delimitersFromVocabulary(VOCAB, { level: 'clause' });
const toIds = (text: string) =>
  text
    .split(/\s+/)
    .filter(Boolean)
    .map((s) => NAMES.indexOf(s));
const w = (count: number, symbol = 'W') => Array(count).fill(symbol).join(' ');

/** Reference definition: c is a natural end when a delimiter run ends right before it. */
function naturalEnds(ids: ArrayLike<number>, set: DelimiterSet): Uint8Array {
  const { DELIMITER, TRAILER, SPACE_AFTER, SPACE_BEFORE, INFIX } = TokenFlag;
  const ends = new Uint8Array(ids.length + 1);
  let inRun = false;
  for (let i = 0; i < ids.length; i++) {
    const f = set.flags[ids[i]];
    const previous = i > 0 ? set.flags[ids[i - 1]] : 0;
    // A run continues through delimiters and through closing marks glued to it (not a "." glued to a word).
    const continues: boolean = inRun && (f & TRAILER) !== 0 && !(previous & SPACE_AFTER) && !ends[i];
    inRun = (f & DELIMITER) !== 0 || Boolean(continues);
    const next = i + 1 < ids.length ? set.flags[ids[i + 1]] : 0;
    const nextContinues = next & DELIMITER || (next & TRAILER && !(f & SPACE_AFTER));
    const glued = i + 1 < ids.length && f & INFIX && !(next & SPACE_BEFORE);
    if (inRun && !nextContinues && !glued) ends[i + 1] = 1;
  }
  ends[ids.length] = 1;
  return ends;
}

/** Checks every documented guarantee of chunk(); returns the offsets. */
function checkChunking(ids: ArrayLike<number>, set: DelimiterSet, minLength: number, maxLength: number) {
  const offsets = chunk(ids, set, { minLength, maxLength });
  const n = ids.length;
  expect(offsets[0]).toBe(0);
  expect(offsets[offsets.length - 1]).toBe(n);
  const natural = naturalEnds(ids, set);
  const nextNatural = new Uint32Array(n + 1);
  nextNatural[n] = n;
  for (let c = n - 1; c >= 0; c--) nextNatural[c] = natural[c] ? c : nextNatural[c + 1];
  const k = offsets.length - 1;
  for (let c = 0; c < k; c++) {
    const start = offsets[c];
    const end = offsets[c + 1];
    expect(end).toBeGreaterThan(start);
    expect(end - start).toBeLessThanOrEqual(maxLength);
    if (n >= minLength) expect(end - start).toBeGreaterThanOrEqual(minLength);
    // An end inside a delimiter-bounded segment is a cut forced by maxLength.
    if (end < n && !natural[end]) {
      const forced = nextNatural[end] - start > maxLength || (c === k - 2 && n - start > maxLength);
      expect(forced, `cut at ${end} in [${start}, ${nextNatural[end]})`).toBe(true);
    }
    // A delimiter-run end inside a chunk was merged because a piece next to it is shorter than minLength.
    for (let p = start + 1; p < end; p++) {
      if (!natural[p]) continue;
      const following = nextNatural[p + 1];
      expect(p - start < minLength || following - p < minLength || following > end, `merge at ${p}`).toBe(true);
    }
  }
  return offsets;
}

describe('chunk on a toy vocabulary', () => {
  it('returns [0] for empty ids', () => {
    expect(chunk([], sentence)).toEqual(Uint32Array.of(0));
    expect(chunk(new Uint32Array(0), sentence, { minLength: 1, maxLength: 1 })).toEqual(Uint32Array.of(0));
  });

  it('ends chunks after delimiters', () => {
    const ids = toIds(`${w(4)} . ${w(5)} ? ${w(3)}`);
    expect([...chunk(ids, sentence, { minLength: 1 })]).toEqual([0, 5, 11, 14]);
    // With the default minLength 4 the 3-token tail joins the chunk before it.
    expect([...chunk(ids, sentence)]).toEqual([0, 5, 14]);
  });

  it('keeps delimiter runs together: `."`, `.` `"` `\\n`, `.` `)`', () => {
    expect([...chunk(toIds(`${w(4)} . Q NL ${w(4)} .`), sentence)]).toEqual([0, 7, 12]);
    expect([...chunk(toIds(`${w(4)} ." NL NL ${w(4)} .`), sentence)]).toEqual([0, 7, 12]);
    expect([...chunk(toIds(`${w(4)} . ) ${w(4)} .`), sentence)]).toEqual([0, 6, 11]);
  });

  it('an opening quote after a line break starts the next chunk', () => {
    expect([...chunk(toIds(`${w(4)} . NL Q ${w(4)} .`), sentence)]).toEqual([0, 6, 12]);
    expect([...chunk(toIds(`${w(4)} . OQ ${w(4)} .`), sentence)]).toEqual([0, 5, 11]);
  });

  it('a "." glued to the next token (3.5, index.ts) is not a sentence end', () => {
    expect([...chunk(toIds(`${w(4)} . w w W .`), sentence, { minLength: 1 })]).toEqual([0, 9]);
    expect([...chunk(toIds(`${w(4)} . W w W .`), sentence, { minLength: 1 })]).toEqual([0, 5, 9]);
    expect([...chunk(toIds(`${w(4)} . NL w w .`), sentence, { minLength: 1 })]).toEqual([0, 6, 9]);
  });

  it('clause level cuts at commas too', () => {
    const ids = toIds(`${w(4)} , ${w(4)} .`);
    expect([...chunk(ids, sentence)]).toEqual([0, 10]);
    expect([...chunk(ids, clause)]).toEqual([0, 5, 10]);
  });

  it('a short fragment joins the previous chunk, a leading one the next', () => {
    expect([...chunk(toIds(`${w(5)} . W .`), sentence, { minLength: 4, maxLength: 16 })]).toEqual([0, 8]);
    expect([...chunk(toIds(`W . ${w(5)} .`), sentence, { minLength: 4, maxLength: 16 })]).toEqual([0, 8]);
    expect([...chunk(toIds(`W . W . ${w(5)} .`), sentence, { minLength: 4, maxLength: 16 })]).toEqual([0, 4, 10]);
    // Too long for the previous chunk: it joins the next one.
    const ids = toIds(`${w(7)} . W . ${w(3)} .`);
    expect([...chunk(ids, sentence, { minLength: 4, maxLength: 8 })]).toEqual([0, 8, 14]);
  });

  it('a short piece that fits neither neighbour is re-cut within both bounds', () => {
    const ids = toIds(`${w(7)} . W . ${w(7)} .`);
    const offsets = checkChunking(ids, sentence, 4, 8);
    expect(offsets.length).toBe(4);
    // The union of 10 is cut at the latest word boundary that leaves ≥ 4 tokens on both sides.
    const tail = toIds(`${w(7)} . W .`);
    expect([...checkChunking(tail, sentence, 4, 8)]).toEqual([0, 6, 10]);
  });

  it('splits a long run at the latest weak mark in the second half of the window', () => {
    // 100 tokens, commas after positions 20 and 40: the cut goes after the comma at 40 (in [32, 64]).
    const ids = toIds(`${w(20)} , ${w(19)} , ${w(58)}`);
    const offsets = checkChunking(ids, sentence, 4, 64);
    expect(offsets[1]).toBe(41);
  });

  it('falls back to a word boundary, then to a hard cut at maxLength', () => {
    // 'w' tokens continue a word; ' w' starts one.
    const words = toIds(`${w(50, 'w')} W ${w(49, 'w')}`);
    expect(checkChunking(words, sentence, 4, 64)[1]).toBe(50);
    const noHints = toIds(w(150, 'w'));
    expect([...checkChunking(noHints, sentence, 4, 64)]).toEqual([0, 64, 128, 150]);
    // The last piece never drops below minLength: 130 = 64 + 62 + 4.
    expect([...chunkLengths(checkChunking(toIds(w(130, 'w')), sentence, 4, 64))]).toEqual([64, 62, 4]);
  });

  it('splits a run of delimiters longer than maxLength', () => {
    const ids = toIds(Array(40).fill('NL').join(' '));
    expect([...checkChunking(ids, sentence, 2, 16)]).toEqual([0, 16, 32, 40]);
  });

  it('accepts number[], Uint32Array, Int32Array and Uint16Array alike', () => {
    const ids = toIds(`${w(6)} . ${w(3)} , ${w(9)} ? NL`);
    const expected = [...chunk(ids, sentence, { minLength: 2, maxLength: 8 })];
    for (const typed of [Uint32Array.from(ids), Int32Array.from(ids), Uint16Array.from(ids), Float64Array.from(ids)]) {
      expect([...chunk(typed, sentence, { minLength: 2, maxLength: 8 })]).toEqual(expected);
    }
  });

  it('uses measured defaults and adapts a missing bound', () => {
    expect(DEFAULT_MIN_LENGTH).toBe(4);
    expect(DEFAULT_MAX_LENGTH).toBe(64);
    const ids = toIds(w(200, 'w'));
    expect([...chunkLengths(chunk(ids, sentence))]).toEqual([64, 64, 64, 8]);
    expect([...chunkLengths(chunk(ids, sentence, { maxLength: 5 }))].every((l) => l <= 5 && l >= 3)).toBe(true);
    expect(chunkLengths(chunk(ids, sentence, { minLength: 40 }))[0]).toBe(79);
  });
});

describe('chunk input validation', () => {
  const ids = toIds(`${w(5)} .`);
  it('rejects bad lengths', () => {
    expect(() => chunk(ids, sentence, { minLength: 8, maxLength: 4 })).toThrow(RangeError);
    expect(() => chunk(ids, sentence, { minLength: 4, maxLength: 6 })).toThrow(/2·minLength − 1/);
    expect(() => chunk(ids, sentence, { minLength: 0 })).toThrow(RangeError);
    expect(() => chunk(ids, sentence, { maxLength: 2.5 })).toThrow(TypeError);
    expect(() => chunk(ids, sentence, { minLength: Number.NaN })).toThrow(/minLength/);
    expect(() => chunk(ids, sentence, null as never)).toThrow(TypeError);
  });
  it('rejects non-integer and out-of-range ids, naming the index', () => {
    expect(() => chunk([1, 2.5], sentence)).toThrow(TypeError);
    expect(() => chunk([1, 2.5], sentence)).toThrow(/ids\[1\]/);
    expect(() => chunk([Number.NaN], sentence)).toThrow(TypeError);
    expect(() => chunk([0, -1], sentence)).toThrow(RangeError);
    expect(() => chunk([0, VOCAB.length], sentence)).toThrow(/outside the delimiter table/);
    expect(() => chunk(Uint32Array.of(0, 0xffffffff), sentence)).toThrow(RangeError);
    expect(() => chunk(['1'] as never, sentence)).toThrow(TypeError);
  });
  it('rejects a missing ids array or delimiter set', () => {
    expect(() => chunk(null as never, sentence)).toThrow(TypeError);
    expect(() => chunk(ids, {} as never)).toThrow(/DelimiterSet/);
  });
  it('chunkLengths checks its input', () => {
    expect([...chunkLengths(Uint32Array.of(0, 3, 7))]).toEqual([3, 4]);
    expect(() => chunkLengths([0, 1] as never)).toThrow(TypeError);
  });
});

describe('chunk properties (fast-check)', () => {
  // Words dominate, as in text; every symbol appears.
  const token = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(NAMES.indexOf('w'), NAMES.indexOf('W')) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: NAMES.length - 1 }) },
  );
  const bounds = fc
    .integer({ min: 1, max: 8 })
    .chain((minLength) => fc.tuple(fc.constant(minLength), fc.integer({ min: 2 * minLength - 1, max: 40 })));

  it('offsets cover the ids, respect both bounds, and cut only at delimiter runs or when forced', () => {
    fc.assert(
      fc.property(
        fc.array(token, { maxLength: 300 }),
        bounds,
        fc.boolean(),
        (ids, [minLength, maxLength], useClause) => {
          checkChunking(ids, useClause ? clause : sentence, minLength, maxLength);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('with no bounds in the way, chunks are exactly the delimiter-bounded segments', () => {
    fc.assert(
      fc.property(fc.array(token, { maxLength: 200 }), (ids) => {
        const offsets = chunk(ids, sentence, { minLength: 1, maxLength: 1000 });
        const natural = naturalEnds(ids, sentence);
        const expected = [0];
        for (let c = 1; c <= ids.length; c++) if (natural[c]) expected.push(c);
        expect([...offsets]).toEqual(ids.length === 0 ? [0] : expected);
      }),
    );
  });
});

describe('chunk on real tokenizers and texts', () => {
  const cases = [
    { name: 'demo', path: DEMO_TOKENIZER_PATH },
    { name: 'qwen3', path: QWEN3_TOKENIZER_PATH },
  ];
  for (const { name, path } of cases) {
    it(`${name}: prose chunks are sentences ending in punctuation or a line break`, () => {
      const json = loadJson(path);
      const hf = hfTokenizer(json);
      const set = delimitersFromTokenizerJson(json);
      const texts = decodeVocabulary(json);
      const ids = hf.encode(PROSE, { add_special_tokens: false }).ids;
      const offsets = checkChunking(ids, set, 4, 64);
      const chunks = [...chunkLengths(offsets)].map((_, c) =>
        ids
          .slice(offsets[c], offsets[c + 1])
          .map((id) => texts[id])
          .join(''),
      );
      expect(chunks.join('')).toBe(PROSE);
      for (const text of chunks) expect(text.trimEnd()).toMatch(/[.!?:;]["”)]?$/);
      expect(chunks[0]).toBe(
        `About five o'clock Henry awoke out of an unrefreshing nap, and muttered to himself, "Troublous dreams, troublous dreams!`,
      );
      expect(chunks).toContain(' Presently a wicked light flamed up in his eye.\n\n');
      expect(chunks).toContain(' Then: silence.');
    });

    it(`${name}: code chunks end at line ends; long lines are cut within maxLength`, () => {
      const json = loadJson(path);
      const hf = hfTokenizer(json);
      const set = delimitersFromTokenizerJson(json);
      const texts = decodeVocabulary(json);
      const ids = hf.encode(CODE, { add_special_tokens: false }).ids;
      const offsets = checkChunking(ids, set, 4, 32);
      const natural = naturalEnds(ids, set);
      let lineEnds = 0;
      for (let c = 1; c < offsets.length; c++) {
        if (natural[offsets[c]]) {
          lineEnds++;
          expect(texts[ids[offsets[c] - 1]]).toMatch(/[\n;.]\s*$/);
        }
      }
      expect(lineEnds).toBeGreaterThanOrEqual(3);
    });

    it(`${name}: one-line JSON is cut at commas or word boundaries, within maxLength`, () => {
      const json = loadJson(path);
      const hf = hfTokenizer(json);
      const set = delimitersFromTokenizerJson(json);
      const texts = decodeVocabulary(json);
      const ids = hf.encode(JSON_TEXT, { add_special_tokens: false }).ids;
      const offsets = checkChunking(ids, set, 4, 24);
      expect(offsets.length).toBeGreaterThan(3);
      let weakCuts = 0;
      for (let c = 1; c < offsets.length - 1; c++) weakCuts += /[,:]\s*$/.test(texts[ids[offsets[c] - 1]]) ? 1 : 0;
      expect(weakCuts / (offsets.length - 2)).toBeGreaterThan(0.5);
    });
  }

  it('stories260K: tok512 ids of a generated story chunk at sentence ends', () => {
    const { pieces, scores } = readTok512();
    const texts = pieces.map((piece) => (/^<0x[0-9A-F]{2}>$/.test(piece) ? '\uFFFD' : piece));
    const set = delimitersFromVocabulary(texts, { specialIds: [0, 1, 2] });
    const story =
      'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';
    const ids = encodeTok512(story, pieces, scores);
    const offsets = checkChunking(ids, set, 4, 64);
    const chunks = [...chunkLengths(offsets)].map((_, c) =>
      ids
        .slice(offsets[c], offsets[c + 1])
        .map((id) => pieces[id])
        .join(''),
    );
    expect(chunks).toEqual([
      ' Once upon a time, there was a little girl named Lily.',
      ' She loved to play outside in the park.',
      ' One day, she saw a big, red ball.',
    ]);
  });
});
