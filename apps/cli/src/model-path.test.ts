import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { resolveModelLocation } from './model-path.js';
import { repoRoot } from './test-support.js';

describe('resolveModelLocation', () => {
  const demo = () => '/demo';
  const stories = path.join(repoRoot, 'fixtures', 'stories260K');

  it('defaults to the demo model and finds a llama2.c tokenizer beside the .bin', () => {
    expect(resolveModelLocation(undefined, undefined, demo)).toMatchObject({ format: 'hf', dir: '/demo' });
    expect(resolveModelLocation(path.join(stories, 'stories260K.bin'), undefined, demo)).toMatchObject({
      format: 'llama2c',
      tokenizer: path.join(stories, 'tok512.bin'),
    });
    const hf = resolveModelLocation(path.join(repoRoot, 'packages', 'model-demo', 'weights'), undefined, demo);
    expect(hf.format).toBe('hf');
  });

  it('gives usage errors for missing or wrong paths', () => {
    expect(() => resolveModelLocation('/no/such/model', undefined, demo)).toThrow(/no such file/);
    expect(() => resolveModelLocation(stories, undefined, demo)).toThrow(/not an HF model folder/);
    expect(() => resolveModelLocation(path.join(stories, 'README.md'), undefined, demo)).toThrow(/llama2.c .bin/);
    expect(() => resolveModelLocation(path.join(stories, 'stories260K.bin'), '/no/tok.bin', demo)).toThrow(
      /--tokenizer: no such file/,
    );
    expect(() => resolveModelLocation(undefined, 'tok.bin', demo)).toThrow(UsageError);
  });
});
