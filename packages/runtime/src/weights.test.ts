import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseHfConfig } from './config.js';
import { parityDir, readJson } from './test-support.js';
import { loadHfWeights, openHfWeights } from './weights.js';

describe('openHfWeights: tensors read when touched, recycled after release', () => {
  const dir = parityDir('qwen2-qkv-bias');
  const configPath = path.join(dir, 'config.json');
  const config = parseHfConfig(readJson(configPath), configPath);

  test('the same values as loadHfWeights; one layer’s arrays serve the next after release', () => {
    const eager = loadHfWeights(dir, config);
    const w = openHfWeights(dir, config);
    try {
      const qkv0 = w.layers[0].qkv;
      expect(qkv0).toEqual(eager.layers[0].qkv);
      expect(w.layers[0].qkv).toBe(qkv0); // kept until release
      expect(w.layers[0].qkvBias).toEqual(eager.layers[0].qkvBias);
      expect(w.layers[0].oBias).toBeUndefined();
      expect(w.lmHead).toBe(w.embed); // tied
      w.release();
      const qkv1 = w.layers[1].qkv;
      expect(qkv1).toBe(qkv0); // recycled
      expect(qkv1).toEqual(eager.layers[1].qkv);
      expect(w.layers[1].gateUp).toEqual(eager.layers[1].gateUp);
      expect(w.layers[1].down).toEqual(eager.layers[1].down);
      expect(w.finalNorm).toEqual(eager.finalNorm);
    } finally {
      w.close();
    }
  });
});
