import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseServerArgs } from './options.js';

describe('parseServerArgs', () => {
  it('takes flags over the environment over defaults', () => {
    const o = parseServerArgs(['--port', '9000', '--api-key', 'a', '--api-key', 'b', '--ratio', '0.5'], {
      PORT: '7000',
      SEMANTICACHE_API_KEYS: 'b, c',
      SEMANTICACHE_STORE: 'redis://127.0.0.1:6390',
    });
    expect(o?.port).toBe(9000);
    expect(o?.apiKeys).toEqual(['a', 'b', 'c']);
    expect(o?.store).toBe('redis://127.0.0.1:6390');
    expect(o?.compression).toEqual({ policy: 'semanticache', ratio: 0.5 });
    expect(o?.modelName).toBe(DEFAULTS.modelName);
    expect(parseServerArgs(['--max-entries', '64', '--policy', 'snapkv'], {})?.compression).toEqual({
      policy: 'snapkv',
      maxEntries: 64,
    });
    expect(parseServerArgs(['--help'], {})).toBeUndefined();
    expect(DEFAULTS.residentDocs).toBe(2);
    expect(parseServerArgs(['--resident-docs', '0'], {})?.residentDocs).toBe(0);
  });

  it('refuses bad values with a message naming the flag', () => {
    expect(() => parseServerArgs(['--policy', 'nope'], {})).toThrow(/--policy: unknown policy 'nope'/);
    expect(() => parseServerArgs(['--ratio', '1'], {})).toThrow(/--ratio: .*\[0, 1\)/);
    expect(() => parseServerArgs(['--ratio', '0.5', '--max-entries', '3'], {})).toThrow(/not both/);
    expect(() => parseServerArgs(['--workers', '0'], {})).toThrow(/--workers: expected an integer ≥ 1/);
    expect(() => parseServerArgs(['--port', '70000'], {})).toThrow(/--port/);
    expect(() => parseServerArgs(['--kv-dtype', 'int8'], {})).toThrow(/--kv-dtype/);
    expect(() => parseServerArgs(['--resident-docs', '-1'], {})).toThrow(/--resident-docs/);
    expect(() => parseServerArgs(['--bogus'], {})).toThrow(/bogus/);
  });
});
