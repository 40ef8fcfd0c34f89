import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { Llama2cTokenizer } from './llama2c.js';
import { demoDir, readJson, storiesDir } from './test-support.js';
import { HfTextTokenizer, type TextTokenizer } from './tokenizer.js';

const hf = HfTextTokenizer.fromFiles(path.join(demoDir, 'tokenizer.json'), path.join(demoDir, 'tokenizer_config.json'));
const llama2c = new Llama2cTokenizer(path.join(storiesDir, 'tok512.bin'), 512);
const TEXTS = ['Once upon a time, there was a little girl.', 'naïve café — 東京 😀!', 'line one\nline  two\ttab', ''];

describe('tokenizers on their own', () => {
  test("llama2.c: encodes a prompt exactly as run.c did (ids recorded from run.c's -i prompt)", () => {
    const expected = readJson<{ cases: { prompt: string; prompt_tokens: number[] }[] }>(
      path.join(storiesDir, 'expected.json'),
    ).cases.find((c) => c.prompt !== '');
    expect(expected).toBeDefined();
    expect(llama2c.encode(expected?.prompt ?? '')).toEqual(expected?.prompt_tokens);
  });

  for (const [name, tokenizer] of [
    ['HF (demo model)', hf],
    ['llama2.c (stories260K)', llama2c],
  ] as [string, TextTokenizer][]) {
    test(`${name}: decode(encode(text)) gives the text back, special tokens or not`, () => {
      for (const text of TEXTS) {
        expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
        const plain = tokenizer.decode(tokenizer.encode(text, { addSpecialTokens: false }));
        // llama2.c's SentencePiece dummy prefix: a leading space that only a preceding BOS strips
        expect(plain).toBe(tokenizer === llama2c && text !== '' ? ` ${text}` : text);
      }
    });

    test(`${name}: ids outside the vocabulary are refused`, () => {
      expect(() => tokenizer.decode([0, 1_000_000])).toThrow(RangeError);
      expect(() => tokenizer.decode([-1])).toThrow(RangeError);
    });
  }
});
