import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { referenceAttention } from './attention.js';
import { parseHfConfig } from './config.js';
import { loadModel } from './model.js';
import { defaultQuantizeEngine, dequantizeBlocks, type QuantBits, quantizeBlocks } from './quantize.js';
import { demoDir, maxAbsDiff, PlainCache, parityDir, readJson, repoRoot } from './test-support.js';
import { Transformer } from './transformer.js';
import { loadHfWeights, type ModelWeights } from './weights.js';

describe.each([4, 8] as QuantBits[])('%i-bit weights', (bits) => {
  const format = bits === 8 ? 'int8' : 'int4';

  test('round-to-nearest blocks: error ≤ half a step (one step where the top level clamps), extreme exact, zeros stay zero', () => {
    const n = 3;
    const k = 64;
    const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    w.fill(0, 2 * k); // last row all zeros
    const { packed, scales } = quantizeBlocks(w, n, k, bits);
    expect(packed.length).toBe((n * 2 * 32 * bits) / 8);
    const back = dequantizeBlocks(packed, scales, n, k, bits);
    for (let i = 0; i < n * k; i++) {
      const scale = scales[Math.floor(i / 32)];
      // opposite sign of the block's extreme, at full magnitude: the top level is one short
      const clamped = Math.round(w[i] / scale) === 2 ** (bits - 1);
      expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(Math.abs(scale) * (clamped ? 1 : 0.5) + 1e-6);
    }
    const block = w.subarray(0, 32);
    const extreme = block.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
    expect(back[block.indexOf(extreme)]).toBeCloseTo(extreme, 5);
    expect(Array.from(back.subarray(2 * k)).every((x) => x === 0)).toBe(true);
    expect(() => quantizeBlocks(w, n * 2, 32 + 1, bits)).toThrow(RangeError);
  });

  test('WebAssembly SIMD and the TypeScript loops give the same bytes: edge blocks, and a matrix over one chunk', () => {
    const k = 1024;
    const n = 2100; // 67200 blocks: the SIMD path's 65536-block window runs twice
    const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37) * Math.exp(Math.cos(i * 0.011) * 3));
    const step = 2 ** -(bits - 1);
    const edges: number[][] = [
      Array(32).fill(0), // all zeros: scale 0
      Array.from({ length: 32 }, (_, i) => (i % 2 ? 1 : -1)), // equal magnitudes: the first one sets the sign
      Array.from({ length: 32 }, (_, i) => (i - 16) * step), // exact ties between levels
      Array.from({ length: 32 }, (_, i) => (i === 31 ? -3 : 1e-40 * i)), // subnormals, extreme last
      Array.from({ length: 32 }, (_, i) => (i === 5 ? 2 : -2 + 2 ** -20)), // opposite-sign extreme: top level clamps
      Array.from({ length: 32 }, (_, i) => 3e38 * Math.sin(i)), // near the float range
    ];
    for (const [b, block] of edges.entries()) w.set(block, b * 97 * 32);
    expect(defaultQuantizeEngine()).toBe('webassembly'); // Node 20 has WebAssembly SIMD
    const simd = quantizeBlocks(w, n, k, bits);
    const plain = quantizeBlocks(w, n, k, bits, 'typescript');
    expect(Buffer.from(simd.scales.buffer).equals(Buffer.from(plain.scales.buffer))).toBe(true);
    expect(Buffer.from(simd.packed.buffer).equals(Buffer.from(plain.packed.buffer))).toBe(true);
  });

  test('MatMulNBits graphs compute exactly what fp32 graphs compute on the dequantized weights', async () => {
    const dir = parityDir('qwen2-qkv-bias'); // biases on q/k/v exercise the Add after MatMulNBits
    const config = parseHfConfig(readJson(path.join(dir, 'config.json')), 'config.json');
    const weights = loadHfWeights(dir, config);
    const roundTrip = (w: Float32Array, k: number) => {
      const { packed, scales } = quantizeBlocks(w, w.length / k, k, bits);
      return dequantizeBlocks(packed, scales, w.length / k, k, bits);
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
    const run = async (w: ModelWeights, weightFormat: 'float32' | 'int8' | 'int4') => {
      // fp32 activations: the quantized weights alone make the difference
      const transformer = await Transformer.create(config, w, { weightFormat, quantizedActivations: false });
      const cache = new PlainCache(config.numLayers, config.numKvHeads, config.headDim);
      const out = await transformer.forward(ids, 0, cache, referenceAttention, 'all');
      await transformer.dispose();
      return out;
    };
    const quantized = await run(weights, format);
    const exact = await run(dequantized, 'float32');
    const original = await run(weights, 'float32');
    expect(maxAbsDiff(quantized, exact)).toBeLessThan(1e-4);
    expect(maxAbsDiff(quantized, original)).toBeGreaterThan(bits === 8 ? 1e-5 : 1e-3); // it really quantized
    // int8 activations (the default) move the logits a little more, and stay close
    const transformer = await Transformer.create(config, weights, { weightFormat: format });
    const cache = new PlainCache(config.numLayers, config.numKvHeads, config.headDim);
    const fast = await transformer.forward(ids, 0, cache, referenceAttention, 'all');
    await transformer.dispose();
    const moved = maxAbsDiff(fast, quantized);
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(0.2); // measured 0.05 (4-bit) and 0.065 (8-bit) on logits of magnitude ~5
  });

  test('demo model: keeps most of the fp32 model (teacher-forced NLL on held-out prose)', async () => {
    const corpus = readFileSync(path.join(repoRoot, 'packages', 'runtime', 'bench', 'corpus.txt'), 'utf8');
    const nll = async (weightFormat: 'float32' | 'int8' | 'int4') => {
      const model = await loadModel(demoDir, { weightFormat });
      const s = model.createSession();
      await s.prefill(model.tokenizer!.encode(corpus.slice(6000, 7000)));
      const result = await s.score(model.tokenizer!.encode(corpus.slice(7000, 8500), { addSpecialTokens: false }));
      await model.dispose();
      return result.nll;
    };
    const [fp32, quantized] = [await nll('float32'), await nll(format)];
    console.log(`demo NLL fp32 ${fp32.toFixed(4)}, ${format} ${quantized.toFixed(4)}`);
    expect(quantized).toBeGreaterThan(fp32 - 0.05);
    expect(quantized).toBeLessThan(fp32 * (bits === 8 ? 1.005 : 1.1));
  });
});
