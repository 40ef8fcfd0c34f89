import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { type GenerateEvent, generateTokens, StreamDecoder } from './generation.js';
import { Llama2cTokenizer } from './llama2c.js';
import { Sampler } from './sampler.js';
import { StopCriteria } from './stopping.js';
import { demoDir, storiesDir } from './test-support.js';
import { HfTextTokenizer, type TextTokenizer } from './tokenizer.js';

const hf = HfTextTokenizer.fromFiles(path.join(demoDir, 'tokenizer.json'), path.join(demoDir, 'tokenizer_config.json'));
const llama2c = new Llama2cTokenizer(path.join(storiesDir, 'tok512.bin'), 512);
const TEXTS = ['Once upon a time, there was a little girl.', 'naïve café — 東京 😀!', 'line one\nline  two\ttab', ''];

describe('StreamDecoder', () => {
  for (const [name, tokenizer] of [
    ['HF (demo model)', hf],
    ['llama2.c (stories260K)', llama2c],
  ] as [string, TextTokenizer][]) {
    test(`${name}: emits only whole characters and adds up to the decoded text`, () => {
      for (const text of TEXTS) {
        const ids = tokenizer.encode(text, { addSpecialTokens: false });
        const decoder = new StreamDecoder(tokenizer);
        const pieces = ids.map((id) => decoder.push(id));
        pieces.push(decoder.flush());
        for (const piece of pieces) expect(piece).not.toContain('\uFFFD');
        expect(pieces.join('')).toBe(tokenizer.decode(ids));
      }
    });
  }

  test('given the context, keeps the word-initial space of the next token', () => {
    const ids = hf.encode('The cat sat on the mat', { addSpecialTokens: false });
    const decoder = new StreamDecoder(hf, ids.slice(0, 3));
    const rest = ids
      .slice(3)
      .map((id) => decoder.push(id))
      .join('');
    expect(hf.decode(ids.slice(0, 3)) + rest + decoder.flush()).toBe(hf.decode(ids));
  });
});

// A 4-token vocabulary ('a' 'b' 'c' EOS) and a script of tokens: logits put all the weight on the next one.
const LETTERS = ['a', 'b', 'c', ''];
const EOS = 3;
const letters = {
  decode: (ids: ArrayLike<number>) => Array.from(ids, (id) => LETTERS[id]).join(''),
};

function oneHot(id: number): Float32Array {
  const logits = new Float32Array(4).fill(-10);
  logits[id] = 10;
  return logits;
}

async function run(
  script: number[],
  options: { maxTokens?: number; stop?: string[]; room?: number; abortAfter?: number } = {},
) {
  const sampled: number[] = [];
  const controller = new AbortController();
  let fed = 0;
  const events: GenerateEvent[] = [];
  const plan = {
    sampler: new Sampler({ temperature: 0 }),
    stopping: new StopCriteria(options.stop ?? [], [EOS], (id) => id),
    decoder: new StreamDecoder(letters),
    maxTokens: options.maxTokens ?? 100,
    signal: controller.signal,
  };
  const steps = {
    sampled: (token: number) => sampled.push(token),
    hasRoom: () => fed + 1 < (options.room ?? 1000),
    next: async () => oneHot(script[++fed]),
  };
  for await (const event of generateTokens(oneHot(script[0]), plan, steps)) {
    events.push(event);
    if (events.length === options.abortAfter) controller.abort();
  }
  return { events, sampled, fed };
}

describe('generateTokens', () => {
  test('stops at EOS: the EOS event has no text and the finish reason', async () => {
    const { events, sampled, fed } = await run([0, 1, EOS, 2]);
    expect(events).toEqual([
      { tokenId: 0, text: 'a' },
      { tokenId: 1, text: 'b' },
      { tokenId: EOS, text: '', finishReason: 'eos' },
    ]);
    expect(sampled).toEqual([0, 1, EOS]);
    expect(fed).toBe(2); // the EOS token is sampled, never fed
  });

  test('stops at maxTokens and at the end of the context, with finish reason length', async () => {
    const long = [0, 1, 2, 0, 1, 2, 0];
    expect((await run(long, { maxTokens: 3 })).events.map((e) => e.finishReason)).toEqual([
      undefined,
      undefined,
      'length',
    ]);
    const { events } = await run(long, { room: 2 });
    expect(events.map((e) => e.text).join('')).toBe('ab');
    expect(events.at(-1)?.finishReason).toBe('length');
  });

  test('holds back a possible stop string and cuts the text where one appears', async () => {
    const { events } = await run([0, 1, 0, 2, 0], { stop: ['bac'] });
    // "b" and then "ba" could become "bac": nothing past "a" shows until the stop string is complete
    expect(events.map((e) => e.text)).toEqual(['a', '', '', '']);
    expect(events.at(-1)?.finishReason).toBe('stop');
    const held = await run([0, 1, 0, 1, EOS], { stop: ['bac'] });
    // the held-back "ba" is released once it can no longer become the stop string, and at the end
    expect(held.events.map((e) => e.text).join('')).toBe('abab');
  });

  test('an aborted signal ends the stream before the next sample, without a finish reason', async () => {
    const { events, sampled } = await run([0, 1, 2, 0, 1], { abortAfter: 2 });
    expect(events.map((e) => e.tokenId)).toEqual([0, 1]);
    expect(events.every((e) => e.finishReason === undefined)).toBe(true);
    expect(sampled).toEqual([0, 1]);
  });
});
