import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';
import {
  CODE_NAMES,
  codeRecallCase,
  FillerSource,
  isCorrect,
  PASSKEY_HEADER,
  PASSKEY_QUESTION,
  passkeyCase,
  passkeyNeedle,
  randomDepth,
  splitPoint,
} from './tasks.js';
import { HELD_OUT_PATH, WordCodec } from './test-support.js';

const corpus = readFileSync(HELD_OUT_PATH, 'utf8');
const codec = new WordCodec();
const filler = new FillerSource(corpus, codec);

describe('retrieval formats', () => {
  it('match the strings the retrieval models were trained on', () => {
    expect(PASSKEY_HEADER).toBe(
      'There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it.\n',
    );
    expect(passkeyNeedle('12345')).toBe(' The pass key is 12345. Remember it. 12345 is the pass key. ');
    expect(PASSKEY_QUESTION).toBe('\nWhat is the pass key? The pass key is');
    expect(CODE_NAMES).toHaveLength(25);
    expect(CODE_NAMES.join(' ')).toBe(
      'amber birch cobalt delta ember falcon garnet harbor indigo juniper kestrel lantern marble nectar orchid pepper quartz raven saffron thistle umber violet willow yarrow zephyr',
    );
  });
});

describe('passkeyCase', () => {
  const req = { contextTokens: 600, depth: 0.5, seed: 7, index: 0 };

  it('builds header + filler with the needle + question, and the answer is the 5-digit key', () => {
    const c = passkeyCase(filler, codec, req);
    expect(c.context.startsWith(PASSKEY_HEADER)).toBe(true);
    expect(c.question).toBe(PASSKEY_QUESTION);
    const key = /^ (\d{5})\.$/.exec(c.answer)?.[1];
    expect(key).toMatch(/^[1-9]\d{4}$/);
    expect(c.context.split(passkeyNeedle(key!)).length).toBe(2);
    expect(c.context).not.toContain('<|endoftext|>');
    expect(c.context).not.toMatch(/ {2}/);
  });

  it('lands within a few tokens of the requested length', () => {
    for (const contextTokens of [200, 600, 1500]) {
      const c = passkeyCase(filler, codec, { ...req, contextTokens });
      const n = codec.encode(c.context + c.question).length;
      expect(Math.abs(n - contextTokens)).toBeLessThanOrEqual(3);
    }
  });

  it('puts the needle at the requested depth', () => {
    const start = passkeyCase(filler, codec, { ...req, depth: 0 });
    expect(start.context.startsWith(PASSKEY_HEADER + passkeyNeedle(start.answer.slice(1, 6)))).toBe(true);
    const end = passkeyCase(filler, codec, { ...req, depth: 1 });
    expect(end.context.endsWith(passkeyNeedle(end.answer.slice(1, 6)))).toBe(true);
    for (const depth of [0.25, 0.5, 0.75]) {
      const c = passkeyCase(filler, codec, { ...req, depth });
      expect(Math.abs(c.needleCharFraction - depth)).toBeLessThan(0.06);
      const at = c.context.indexOf(passkeyNeedle(c.answer.slice(1, 6)));
      // the needle follows a sentence end where one is near
      expect(c.context.slice(at - 2, at)).toMatch(/[.!?]["')\]]?$|\w$/);
    }
  });

  it('is deterministic in the seed and differs across seeds and indices', () => {
    expect(passkeyCase(filler, codec, req)).toEqual(passkeyCase(filler, codec, req));
    const keys = new Set([0, 1, 2, 3, 4, 5].map((index) => passkeyCase(filler, codec, { ...req, index }).answer));
    expect(keys.size).toBeGreaterThan(4);
    expect(passkeyCase(filler, codec, { ...req, seed: 8 }).context).not.toBe(passkeyCase(filler, codec, req).context);
  });

  it('rejects bad requests with a RangeError naming the argument', () => {
    expect(() => passkeyCase(filler, codec, { ...req, depth: 1.5 })).toThrow(/depth/);
    expect(() => passkeyCase(filler, codec, { ...req, depth: Number.NaN })).toThrow(RangeError);
    expect(() => passkeyCase(filler, codec, { ...req, contextTokens: 3 })).toThrow(/contextTokens/);
    expect(() => passkeyCase(filler, codec, { ...req, contextTokens: 10_000_000 })).toThrow(/no document holds/);
  });
});

describe('codeRecallCase', () => {
  it('scatters 2–6 distinct facts and asks for one of them', () => {
    const counts = new Set<number>();
    for (let index = 0; index < 30; index++) {
      const c = codeRecallCase(filler, codec, { contextTokens: 800, depth: 0.5, seed: 1, index });
      const facts = [...c.context.matchAll(/ The code for (\w+) is (\d+)\. /g)];
      counts.add(facts.length);
      expect(facts.length).toBeGreaterThanOrEqual(2);
      expect(facts.length).toBeLessThanOrEqual(6);
      const names = facts.map((f) => f[1]);
      expect(new Set(names).size).toBe(names.length);
      for (const [, name, code] of facts) {
        expect(CODE_NAMES).toContain(name);
        expect(code).toMatch(/^[1-9]\d{2,3}$/);
      }
      const asked = /^\nWhat is the code for (\w+)\? The code for (\w+) is$/.exec(c.question);
      expect(asked?.[1]).toBe(asked?.[2]);
      const fact = facts.find((f) => f[1] === asked?.[1]);
      expect(c.answer).toBe(` ${fact?.[2]}.`);
      expect(Math.abs(c.needleCharFraction - 0.5)).toBeLessThan(0.08);
    }
    expect(counts.size).toBeGreaterThan(2);
  });

  it('places the asked fact first at depth 0 and last at depth 1', () => {
    const first = codeRecallCase(filler, codec, { contextTokens: 500, depth: 0, seed: 3, index: 0 });
    expect(first.needleCharFraction).toBe(0);
    const last = codeRecallCase(filler, codec, { contextTokens: 500, depth: 1, seed: 3, index: 0 });
    const code = last.answer.slice(1, -1);
    expect(last.context.endsWith(` is ${code}. `)).toBe(true);
  });
});

describe('randomDepth', () => {
  it('draws a reproducible depth per case, spread over [0, 1]', () => {
    const depths = Array.from({ length: 48 }, (_, index) => randomDepth('passkey', 0, 2048, index));
    expect(depths).toEqual(Array.from({ length: 48 }, (_, index) => randomDepth('passkey', 0, 2048, index)));
    for (const d of depths) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1);
      expect(Math.round(d * 1000)).toBeCloseTo(d * 1000, 9);
    }
    // every quarter of the context gets some of the 48 cases
    for (let q = 0; q < 4; q++) expect(depths.filter((d) => d >= q / 4 && d < (q + 1) / 4).length).toBeGreaterThan(4);
    expect(new Set(depths).size).toBeGreaterThan(40);
    expect(randomDepth('passkey', 1, 2048, 0)).not.toBe(randomDepth('passkey', 0, 2048, 0));
    expect(randomDepth('code-recall', 0, 2048, 0)).not.toBe(randomDepth('passkey', 0, 2048, 0));
  });
});

describe('helpers', () => {
  it('splitPoint prefers a space after a sentence end', () => {
    const text = 'One two three. Four five six seven eight. Nine ten.';
    const p = splitPoint(text, 0.3);
    expect(text[p]).toBe(' ');
    expect(text[p - 1]).toBe('.');
    expect(splitPoint(text, 0)).toBe(0);
    expect(splitPoint(text, 1)).toBe(text.length);
  });

  it('isCorrect needs the continuation to start with the answer', () => {
    expect(isCorrect(' 12345. Remember', ' 12345.')).toBe(true);
    expect(isCorrect(' 1234.', ' 12345.')).toBe(false);
    expect(isCorrect('12345.', ' 12345.')).toBe(false);
  });

  it('Rng is reproducible and uniform enough', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
    expect(() => new Rng(Number.NaN)).toThrow(RangeError);
  });

  it('FillerSource never crosses a document boundary', () => {
    const small = new FillerSource('alpha beta gamma delta\n<|endoftext|>\nepsilon zeta eta theta iota kappa', codec);
    const rng = new Rng(1);
    for (let i = 0; i < 20; i++) expect(small.take(3, rng)).not.toMatch(/delta.*epsilon/);
  });
});
