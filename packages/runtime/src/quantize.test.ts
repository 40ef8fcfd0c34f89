import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { referenceAttention } from './attention.js';
import { parseHfConfig } from './config.js';
import { loadModel } from './model.js';
import { dequantizeInt4, quantizeInt4 } from './quantize.js';
import { demoDir, maxAbsDiff, PlainCache, parityDir, readJson, repoRoot } from './test-support.js';
import { Transformer } from './transformer.js';
import { loadHfWeights, type ModelWeights } from './weights.js';

describe('int4 weights', () => {
  test('round-to-nearest blocks: error ≤ half a step (one step where +8 clamps to 7), extreme exact, zeros stay zero', () => {
    const n = 3;
    const k = 64;
    const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    w.fill(0, 2 * k); // last row all zeros
    const { packed, scales } = quantizeInt4(w, n, k);
    expect(packed.length).toBe(n * 2 * 16);
    const back = dequantizeInt4(packed, scales, n, k);
    for (let i = 0; i < n * k; i++) {
      const scale = scales[Math.floor(i / 32)];
      const clamped = Math.round(w[i] / scale) === 8; // opposite sign of the block's extreme, at full magnitude
      expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(Math.abs(scale) * (clamped ? 1 : 0.5) + 1e-6);
    }
    const block = w.subarray(0, 32);
    const extreme = block.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
    expect(back[block.indexOf(extreme)]).toBeCloseTo(extreme, 5);
    expect(Array.from(back.subarray(2 * k)).every((x) => x === 0)).toBe(true);
    expect(() => quantizeInt4(w, n * 2, 32 + 1)).toThrow(RangeError);
  });

  test('MatMulNBits graphs compute exactly what fp32 graphs compute on the dequantized weights', async () => {
    const dir = parityDir('qwen2-qkv-bias'); // biases on q/k/v exercise the Add after MatMulNBits
    const config = parseHfConfig(readJson(path.join(dir, 'config.json')), 'config.json');
    const weights = loadHfWeights(dir, config);
    const roundTrip = (w: Float32Array, k: number) => {
      const { packed, scales } = quantizeInt4(w, w.length / k, k);
      return dequantizeInt4(packed, scales, w.length / k, k);
    };
    const h = config.hiddenSize;
    const dequantized: ModelWeights = {
      ...weights,
      lmHead: roundTrip(weights.lmHead, h),
      layers: weights.layers.map((l) => ({
        ...l,
        qkv: roundTrip(l.qkv, h),
        o: roundTrip(l.o, config.numHeads * config.headDim),
        gateUp: roundTrip(l.gateUp, h),
        down: roundTrip(l.down, config.intermediateSize),
      })),
    };
    const ids = Int32Array.from(readJson<{ input_ids: number[] }>(path.join(dir, 'reference.json')).input_ids);
    const run = async (w: ModelWeights, weightFormat: 'float32' | 'int4') => {
      const transformer = await Transformer.create(config, w, { weightFormat });
      const cache = new PlainCache(config.numLayers, config.numKvHeads, config.headDim);
      const out = await transformer.forward(ids, 0, cache, referenceAttention, 'all');
      await transformer.dispose();
      return out;
    };
    const int4 = await run(weights, 'int4');
    const exact = await run(dequantized, 'float32');
    const original = await run(weights, 'float32');
    expect(maxAbsDiff(int4, exact)).toBeLessThan(1e-4);
    expect(maxAbsDiff(int4, original)).toBeGreaterThan(1e-3); // it really quantized
  });

  test('demo model: int4 keeps most of the fp32 model (teacher-forced NLL on held-out prose)', async () => {
    const corpus = readFileSync(path.join(repoRoot, 'packages', 'runtime', 'bench', 'corpus.txt'), 'utf8');
    const nll = async (weightFormat: 'float32' | 'int4') => {
      const model = await loadModel(demoDir, { weightFormat });
      const s = model.createSession();
      await s.prefill(model.tokenizer!.encode(corpus.slice(6000, 7000)));
      const result = await s.score(model.tokenizer!.encode(corpus.slice(7000, 8500), { addSpecialTokens: false }));
      await model.dispose();
      return result.nll;
    };
    const [fp32, int4] = [await nll('float32'), await nll('int4')];
    console.log(`demo NLL fp32 ${fp32.toFixed(4)}, int4 ${int4.toFixed(4)}`);
    expect(int4).toBeGreaterThan(fp32 - 0.05);
    expect(int4).toBeLessThan(fp32 * 1.1);
  });
});
