// Independent oracle: onnxruntime's com.microsoft.MultiHeadAttention with an additive attention_bias computes
// softmax(q·kᵀ·scale + bias)·v, the same math by a different implementation.
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decode, prefill, setSimdLevel } from './index.js';
import { float16BitsToFloat32Array } from './reference.js';
import {
  randomArray,
  randomCache,
  relativeError,
  restoreKernelSettingsAfterAll,
  rng,
  SIMD_LEVELS,
} from './test-helpers.js';
import type { HeadCache } from './types.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(name: string, dims: number[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } },
  });
}

/** A graph with one MultiHeadAttention node over [1, S, H·d] query and [1, L, H·d] keys/values. */
async function mhaSession(H: number, d: number, S: number, L: number, scale: number): Promise<ort.InferenceSession> {
  const A = onnx.AttributeProto.AttributeType;
  const node = onnx.NodeProto.create({
    opType: 'MultiHeadAttention',
    domain: 'com.microsoft',
    name: 'mha',
    input: ['q', 'k', 'v', '', '', 'bias'],
    output: ['o'],
    attribute: [
      { name: 'num_heads', type: A.INT, i: H },
      { name: 'scale', type: A.FLOAT, f: scale },
    ],
  });
  const bytes = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'proportional-attention-test',
      graph: onnx.GraphProto.create({
        name: 'g',
        node: [node],
        input: [
          valueInfo('q', [1, S, H * d]),
          valueInfo('k', [1, L, H * d]),
          valueInfo('v', [1, L, H * d]),
          valueInfo('bias', [1, H, S, L]),
        ],
        output: [valueInfo('o', [1, S, H * d])],
      }),
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
    }),
  ).finish();
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
}

const asFloat32 = (a: Float32Array | Uint16Array) => (a instanceof Uint16Array ? float16BitsToFloat32Array(a) : a);

/**
 * Runs ORT on the same inputs: every query head gets its KV head's keys and values (GQA expanded), padded to the
 * longest head; the bias carries logSizes, the causal mask and the padding mask (-1e30).
 */
async function ortAttention(q: Float32Array, heads: HeadCache[], H: number, d: number, m: number, scale: number) {
  const group = H / heads.length;
  const L = Math.max(...heads.map((h) => h.length));
  const k = new Float32Array(L * H * d);
  const v = new Float32Array(L * H * d);
  const bias = new Float32Array(H * m * L).fill(-1e30);
  for (let i = 0; i < H; i++) {
    const head = heads[Math.floor(i / group)];
    const keys = asFloat32(head.keys);
    const values = asFloat32(head.values);
    for (let j = 0; j < head.length; j++) {
      k.set(keys.subarray(j * d, (j + 1) * d), (j * H + i) * d);
      v.set(values.subarray(j * d, (j + 1) * d), (j * H + i) * d);
    }
    for (let t = 0; t < m; t++)
      for (let j = 0; j <= head.length - m + t; j++) bias[(i * m + t) * L + j] = head.logSizes[j];
  }
  const session = await mhaSession(H, d, m, L, scale);
  const result = await session.run({
    q: new ort.Tensor('float32', q, [1, m, H * d]),
    k: new ort.Tensor('float32', k, [1, L, H * d]),
    v: new ort.Tensor('float32', v, [1, L, H * d]),
    bias: new ort.Tensor('float32', bias, [1, H, m, L]),
  });
  await session.release();
  return result.o.data as Float32Array;
}

restoreKernelSettingsAfterAll();

describe.each(SIMD_LEVELS)('ORT MultiHeadAttention oracle (%s)', (level) => {
  it('decode agrees on equal-length heads, MHA and GQA, fp32 and fp16', async () => {
    setSimdLevel(level);
    const random = rng(5);
    for (const [H, Hkv, d, n, dtype] of [
      [6, 6, 64, 777, 'float32'],
      [8, 2, 128, 300, 'float16'],
      [4, 1, 80, 129, 'float32'],
    ] as const) {
      const cache = randomCache(random, new Array(Hkv).fill(n), d, dtype);
      const q = randomArray(random, H * d, 2);
      const ours = decode({ q, heads: cache.heads, numHeads: H, headDim: d });
      const theirs = await ortAttention(q, cache.heads, H, d, 1, 1 / Math.sqrt(d));
      expect(relativeError(ours, theirs)).toBeLessThanOrEqual(1e-5);
      // The oracle sees the bias: without the logSizes the answers part.
      const unbiased = cache.heads.map((h) => ({ ...h, logSizes: new Float32Array(h.length) }));
      expect(relativeError(decode({ q, heads: unbiased, numHeads: H, headDim: d }), theirs)).toBeGreaterThan(1e-3);
    }
  });

  it('prefill agrees on a causal block over ragged heads (masked padding)', async () => {
    setSimdLevel(level);
    const random = rng(6);
    const [H, d, m] = [8, 64, 24];
    const cache = randomCache(random, [100, 37, 250, 24], d, 'float32');
    const q = randomArray(random, m * H * d, 2);
    const ours = prefill({ q, heads: cache.heads, numHeads: H, headDim: d, blockLength: m, scale: 0.2 });
    const theirs = await ortAttention(q, cache.heads, H, d, m, 0.2);
    expect(relativeError(ours, theirs)).toBeLessThanOrEqual(1e-5);
  });
});
