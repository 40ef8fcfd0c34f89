import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoModelDir, requireDemoModelDir } from './index.js';

describe('model-demo', () => {
  it('ships every shard named by the safetensors index', () => {
    expect(requireDemoModelDir()).toBe(demoModelDir);
    const index = JSON.parse(readFileSync(path.join(demoModelDir, 'model.safetensors.index.json'), 'utf8'));
    const shards = new Set<string>(Object.values(index.weight_map));
    expect(shards.size).toBe(3);
    for (const shard of shards) expect(statSync(path.join(demoModelDir, shard)).size).toBeGreaterThan(1_000_000);
  });
});
