import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from './model.js';
import { readJson, storiesDir } from './test-support.js';

interface Case {
  name: string;
  prompt: string;
  temperature: number;
  topp: number;
  seed: number | null;
  steps: number;
  prompt_tokens: number[];
  expected: string;
}
const expected = readJson<{ cases: Case[] }>(path.join(storiesDir, 'expected.json'));

describe('stories260K (llama2.c)', () => {
  for (const file of ['stories260K.bin', 'stories260K.v1.bin']) {
    test(`${file}: all expected.json cases`, async () => {
      const model = await loadModel(path.join(storiesDir, file));
      for (const c of expected.cases) {
        const tok = model.tokenizer!;
        expect(tok.encode(c.prompt)).toEqual(c.prompt_tokens);
        const session = model.createSession({ kvDtype: 'float32' });
        const ids = [...c.prompt_tokens];
        let streamed = '';
        for await (const ev of session.generate(c.prompt_tokens, {
          // run.c samples after each of its `steps` forward passes, prompt included
          maxTokens: c.steps - c.prompt_tokens.length + 1,
          temperature: c.temperature,
          topP: c.topp,
          seed: c.seed ?? undefined,
        })) {
          if (ev.finishReason !== 'eos') ids.push(ev.tokenId);
          streamed += ev.text;
        }
        const text = tok.decode(ids);
        expect(text, c.name).toBe(c.expected);
        // the incremental text stream adds up to the same story
        expect(tok.decode(c.prompt_tokens) + streamed, c.name).toBe(c.expected);
      }
      await model.dispose();
    });
  }
});
