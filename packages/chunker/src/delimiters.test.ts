import { describe, expect, it } from 'vitest';
import { decodeVocabulary } from './decode.js';
import { delimitersFromTokenizerJson, delimitersFromVocabulary, TokenFlag } from './delimiters.js';
import {
  DEMO_TOKENIZER_PATH,
  hfTokenizer,
  loadJson,
  QWEN3_TOKENIZER_PATH,
  readTok512,
} from './test-support/fixtures.js';

const { DELIMITER, TRAILER, WEAK, SPACE_AFTER, SPACE_BEFORE } = TokenFlag;

const PIECES = [
  '.', // 0
  '.\n\n', // 1
  '),', // 2
  '."', // 3
  ' "', // 4 opening quote
  '"', // 5 lone quote: ambiguous
  ' Mr', // 6
  '。', // 7
  '…', // 8
  ',', // 9
  '\n', // 10
  '    ', // 11
  ')', // 12
  '. ', // 13
  'word"', // 14
  '!)', // 15
  '\u3002\u300d', // 16 。」
  ' ;', // 17
  '', // 18 unused id
  '\uFFFD', // 19 tail of a multi-byte character
  ' (', // 20
  '?\u201d', // 21 ?”
  '\n    ', // 22 newline + indentation
  ' "Hello', // 23
];

function flagsOf(level: 'sentence' | 'clause' | { characters: string; trailing?: string }) {
  const set = delimitersFromVocabulary(PIECES, { level });
  return (piece: string) => set.flags[PIECES.indexOf(piece)];
}

describe('token classification', () => {
  it('sentence level: ends in . ! ? … 。 or a line break, after spaces and closing marks', () => {
    const f = flagsOf('sentence');
    for (const piece of ['.', '.\n\n', '."', '。', '…', '\n', '. ', '!)', '。」', '?”', '\n    ']) {
      expect(f(piece) & DELIMITER, JSON.stringify(piece)).toBe(DELIMITER);
    }
    for (const piece of ['),', ' "', '"', ' Mr', ',', '    ', ')', 'word"', ' ;', '', '\uFFFD', ' (', ' "Hello']) {
      expect(f(piece) & DELIMITER, JSON.stringify(piece)).toBe(0);
    }
  });

  it('clause level adds , ; : and closing marks; an ASCII quote closes only after a non-space', () => {
    const f = flagsOf('clause');
    for (const piece of ['.', '),', '."', ',', ')', 'word"', ' ;', '!)', '\n']) {
      expect(f(piece) & DELIMITER, JSON.stringify(piece)).toBe(DELIMITER);
    }
    for (const piece of [' "', '"', ' Mr', '    ', ' (', ' "Hello', '\uFFFD']) {
      expect(f(piece) & DELIMITER, JSON.stringify(piece)).toBe(0);
    }
  });

  it('closing-only tokens are trailers; opening quotes are not', () => {
    const f = flagsOf('sentence');
    expect(f(')') & TRAILER).toBe(TRAILER);
    expect(f('"') & TRAILER).toBe(TRAILER);
    expect(f(' "') & TRAILER).toBe(0);
    expect(f('."') & TRAILER).toBe(0);
    expect(f('    ') & TRAILER).toBe(0);
  });

  it('weak marks and word boundaries are split hints', () => {
    const f = flagsOf('sentence');
    expect(f('),') & WEAK).toBe(WEAK);
    expect(f(' ;') & WEAK).toBe(WEAK);
    expect(f('.') & WEAK).toBe(0);
    expect(flagsOf('clause')(',') & WEAK).toBe(0);
    expect(f('    ') & (SPACE_AFTER | SPACE_BEFORE)).toBe(SPACE_AFTER | SPACE_BEFORE);
    expect(f(' Mr') & (SPACE_AFTER | SPACE_BEFORE)).toBe(SPACE_BEFORE);
  });

  it('custom character sets', () => {
    const f = flagsOf({ characters: ';' });
    expect(f(' ;') & DELIMITER).toBe(DELIMITER);
    expect(f('.') & DELIMITER).toBe(0);
    expect(f('\n') & DELIMITER).toBe(0);
    expect(f('.') & WEAK).toBe(WEAK);
    const g = flagsOf({ characters: '\n', trailing: '' });
    expect(g('\n    ') & DELIMITER).toBe(DELIMITER);
    expect(g(')') & TRAILER).toBe(0);
  });

  it('accepts a decode(id) function and marks special ids', () => {
    const set = delimitersFromVocabulary((id) => PIECES[id], { vocabSize: PIECES.length, specialIds: [0, 1] });
    expect(set.vocabSize).toBe(PIECES.length);
    expect(set.isDelimiter[0]).toBe(0);
    expect(set.isDelimiter[1]).toBe(0);
    expect(set.isDelimiter[7]).toBe(1);
    expect(set.level).toBe('sentence');
  });

  it('rejects bad options and vocabularies with typed errors', () => {
    expect(() => delimitersFromVocabulary((id) => PIECES[id])).toThrow(RangeError);
    expect(() => delimitersFromVocabulary((id) => PIECES[id], { vocabSize: 2.5 })).toThrow(/vocabSize/);
    expect(() => delimitersFromVocabulary([])).toThrow(RangeError);
    expect(() => delimitersFromVocabulary(() => '', { vocabSize: 2 ** 30 })).toThrow(RangeError);
    expect(() => delimitersFromVocabulary(['a'], null as never)).toThrow(/options must be an object/);
    expect(() => delimitersFromVocabulary(['a'], { vocabSize: 2 })).toThrow(/differs/);
    expect(() => delimitersFromVocabulary('abc' as never)).toThrow(TypeError);
    expect(() => delimitersFromVocabulary([1, 2] as never)).toThrow(/not a string/);
    expect(() => delimitersFromVocabulary(['a'], { specialIds: [1] })).toThrow(/specialIds/);
    expect(() => delimitersFromVocabulary(['a'], { level: 'paragraph' as never })).toThrow(TypeError);
    expect(() => delimitersFromVocabulary(['a'], { level: { characters: '' } })).toThrow(RangeError);
    expect(() => delimitersFromVocabulary(['a'], { level: { characters: ' ' } })).toThrow(/whitespace/);
    expect(() => delimitersFromVocabulary(['a'], { level: { characters: '𝔘' } })).toThrow(/Basic Multilingual Plane/);
    expect(() => delimitersFromVocabulary(['a'], { level: { characters: '.', trailing: 5 as never } })).toThrow(
      TypeError,
    );
  });
});

describe('delimiter sets of real tokenizers', () => {
  it('demo tokenizer: the ids of ".", "!\\"" and "\\n" are delimiters, " the" is not', () => {
    const json = loadJson(DEMO_TOKENIZER_PATH);
    const set = delimitersFromTokenizerJson(json);
    const hf = hfTokenizer(json);
    const idOf = (text: string) => {
      const { ids } = hf.encode(text, { add_special_tokens: false });
      expect(ids, text).toHaveLength(1);
      return ids[0];
    };
    expect(set.isDelimiter[idOf('.')]).toBe(1);
    expect(set.isDelimiter[idOf('\n')]).toBe(1);
    expect(set.isDelimiter[idOf(' the')]).toBe(0);
    expect(set.isDelimiter[0]).toBe(0); // <|endoftext|>
    expect(set.vocabSize).toBe(8192);
  });

  it('Qwen3: byte-level tokens for "\\n\\n", ".\\n\\n", "。", "），" are found by decoding, not by lookup', () => {
    const json = loadJson(QWEN3_TOKENIZER_PATH);
    const sentence = delimitersFromTokenizerJson(json);
    const clause = delimitersFromTokenizerJson(json, { level: 'clause' });
    const hf = hfTokenizer(json);
    const vocab = json.model as { vocab: Record<string, number> };
    // String lookups miss: the vocabulary stores "\n\n" as "ĊĊ".
    expect(vocab.vocab['\n\n']).toBeUndefined();
    for (const text of ['\n\n', '.\n\n', '。', '！', '?”']) {
      const { ids } = hf.encode(`a${text}`, { add_special_tokens: false });
      expect(sentence.isDelimiter[ids[ids.length - 1]], JSON.stringify(text)).toBe(1);
    }
    const { ids } = hf.encode('a），', { add_special_tokens: false });
    expect(sentence.isDelimiter[ids[ids.length - 1]]).toBe(0);
    expect(clause.isDelimiter[ids[ids.length - 1]]).toBe(1);
    let sentenceCount = 0;
    let clauseCount = 0;
    for (let id = 0; id < sentence.vocabSize; id++) {
      sentenceCount += sentence.isDelimiter[id];
      clauseCount += clause.isDelimiter[id];
      // Clause level is a superset of sentence level.
      if (sentence.isDelimiter[id]) expect(clause.isDelimiter[id]).toBe(1);
    }
    expect(sentenceCount).toBeGreaterThan(500);
    expect(clauseCount).toBeGreaterThan(sentenceCount);
  });

  it('llama2.c tok512.bin through delimitersFromVocabulary', () => {
    const { pieces } = readTok512();
    // Byte pieces <0xHH> stand for one byte: ASCII bytes are characters, others partial UTF-8.
    const texts = pieces.map((piece) => {
      const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
      if (byte === null) return piece;
      const value = Number.parseInt(byte[1], 16);
      return value < 0x80 ? String.fromCharCode(value) : '\uFFFD';
    });
    const set = delimitersFromVocabulary(texts, { specialIds: [0, 1, 2] });
    expect(set.vocabSize).toBe(512);
    expect(set.isDelimiter[1]).toBe(0); // BOS "\n<s>\n" would end in a line break, but it is special
    expect(set.isDelimiter['.'.charCodeAt(0) + 3]).toBe(1);
    expect(set.isDelimiter['\n'.charCodeAt(0) + 3]).toBe(1);
    expect(set.isDelimiter[pieces.indexOf('.')]).toBe(1);
    expect(set.isDelimiter[pieces.indexOf(' t')]).toBe(0);
  });

  it('decodeVocabulary and delimitersFromTokenizerJson agree on the demo tokenizer', () => {
    const json = loadJson(DEMO_TOKENIZER_PATH);
    const fromJson = delimitersFromTokenizerJson(json, { level: 'clause' });
    const texts = decodeVocabulary(json);
    const fromTexts = delimitersFromVocabulary(texts, { level: 'clause', specialIds: [0] });
    expect(fromTexts.flags).toEqual(fromJson.flags);
  });
});
