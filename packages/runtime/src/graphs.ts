import type { ModelConfig } from './config.js';
import { ropeInverseFrequencies } from './config.js';
import { DataType, GraphBuilder, valueInfo } from './onnx-builder.js';
import { QUANT_BLOCK, type QuantBits, quantizeBlocks } from './quantize.js';
import type { LayerWeights, ModelWeights } from './weights.js';

/**
 * The dense math of the decoder as a chain of small ONNX graphs; attention happens between them, outside ORT.
 *   first:    ids, positions        → h, q, k, v        (embedding + pre-attention of layer 0)
 *   mid(l):   h, attn(l-1), positions → h, q, k, v      (post-attention of layer l-1 fused with pre-attention of l)
 *   last:     h, attn(L-1)          → normed hidden    (post-attention of the last layer + final norm)
 *   head:     normed hidden rows    → logits
 * Fusing post(l-1) with pre(l) makes L + 2 session runs per step instead of 2L + 1 (`fuse: false` builds the
 * unfused pair per layer, kept to measure the difference).
 * q comes out as [m, H, d], k and v as [m, Hkv, d] (token-major, what the cache and the kernel take); RoPE is
 * applied to q and k inside the graph from float positions, so positions can keep counting after compression.
 */
export interface GraphSet {
  first: Uint8Array;
  /** index l - 1 for layer l = 1..L-1: one fused graph, or post(l-1) then pre(l) */
  mid: (Uint8Array | { post: Uint8Array; pre: Uint8Array })[];
  last: Uint8Array;
  head: Uint8Array;
}

export type WeightFormat = 'float32' | 'int8' | 'int4';

export interface GraphOptions {
  /** Fuse post-attention(l-1) with pre-attention(l) (default true). */
  fuse?: boolean;
  /** 'int8' / 'int4': projection and LM-head matrices as 8- or 4-bit MatMulNBits blocks (fp32 where k is not a multiple of 32). */
  weightFormat?: WeightFormat;
  /** Quantized matrices multiply int8-quantized activations (default true); false keeps the activations fp32. */
  quantizedActivations?: boolean;
}

interface Ctx {
  config: ModelConfig;
  /** bits of the quantized matrices; undefined: fp32 */
  bits: QuantBits | undefined;
  /** MatMulNBits accuracy_level: 4 computes with int8 activations, 0 in fp32 */
  accuracyLevel: 0 | 4;
}

export function buildGraphs(config: ModelConfig, weights: ModelWeights, options: GraphOptions = {}): GraphSet {
  const format = options.weightFormat ?? 'float32';
  const c: Ctx = {
    config,
    bits: format === 'int8' ? 8 : format === 'int4' ? 4 : undefined,
    accuracyLevel: options.quantizedActivations === false ? 0 : 4,
  };
  const fuse = options.fuse ?? true;
  const mid: GraphSet['mid'] = [];
  for (let l = 1; l < config.numLayers; l++) {
    const [prev, layer] = [weights.layers[l - 1], weights.layers[l]];
    mid.push(fuse ? buildMid(c, prev, layer, l) : { post: buildPost(c, prev, l - 1), pre: buildPre(c, layer, l) });
  }
  return { first: buildFirst(c, weights), mid, last: buildLast(c, weights), head: buildHead(c, weights) };
}

const F = DataType.FLOAT;

function rmsNorm(g: GraphBuilder, x: string, weight: Float32Array, eps: number, tag: string): string {
  // HF: x * rsqrt(mean(x²) + eps) * weight, in fp32
  const sq = g.op('Mul', [x, x]);
  const mean = g.op('ReduceMean', [sq], { axes: [-1], keepdims: 1 });
  const std = g.op('Sqrt', [g.op('Add', [mean, g.scalarInit(`${tag}_eps`, eps)])]);
  const normed = g.op('Mul', [x, g.op('Reciprocal', [std])]);
  return g.op('Mul', [normed, g.floatInit(`${tag}_w`, [weight.length], weight)]);
}

function linear(
  g: GraphBuilder,
  c: Ctx,
  x: string,
  w: Float32Array,
  bias: Float32Array | undefined,
  inDim: number,
  tag: string,
): string {
  const outDim = w.length / inDim;
  if (c.bits !== undefined && inDim % QUANT_BLOCK === 0) {
    const { packed, scales } = quantizeBlocks(w, outDim, inDim, c.bits);
    const blocks = inDim / QUANT_BLOCK;
    const y = g.op(
      'MatMulNBits',
      [
        x,
        g.uint8Init(`${tag}_q`, [outDim, blocks, (QUANT_BLOCK * c.bits) / 8], packed),
        g.floatInit(`${tag}_s`, [outDim * blocks], scales),
      ],
      { K: inDim, N: outDim, bits: c.bits, block_size: QUANT_BLOCK, accuracy_level: c.accuracyLevel },
      undefined,
      'com.microsoft',
    );
    return bias ? g.op('Add', [y, g.floatInit(`${tag}_b`, [outDim], bias)]) : y;
  }
  const inputs = [x, g.floatInit(`${tag}_w`, [outDim, inDim], w)];
  if (bias) inputs.push(g.floatInit(`${tag}_b`, [outDim], bias));
  return g.op('Gemm', inputs, { transB: 1 });
}

function ropeTables(g: GraphBuilder, config: ModelConfig, positions: string): { cos: string; sin: string } {
  const inv = ropeInverseFrequencies(config.rope, config.headDim);
  const pos = g.op('Unsqueeze', [positions, g.int64Init('rope_axes', [1])]); // [m, 1]
  const freqs = g.op('Mul', [pos, g.floatInit('rope_inv_freq', [inv.length], inv)]); // [m, d/2]
  const shape = g.int64Init('rope_shape', [-1, 1, inv.length]);
  return {
    cos: g.op('Reshape', [g.op('Cos', [freqs]), shape]),
    sin: g.op('Reshape', [g.op('Sin', [freqs]), shape]),
  };
}

function rope(g: GraphBuilder, x: string, heads: number, d: number, t: { cos: string; sin: string }, output: string) {
  const shaped = g.op('Reshape', [x, g.int64Init(g.fresh('heads_shape'), [-1, heads, d])]);
  const x1 = g.fresh('x1');
  const x2 = g.fresh('x2');
  g.opMulti('Split', [shaped, g.int64Init(g.fresh('halves'), [d / 2, d / 2])], [x1, x2], { axis: 2 });
  const lo = g.op('Sub', [g.op('Mul', [x1, t.cos]), g.op('Mul', [x2, t.sin])]);
  const hi = g.op('Add', [g.op('Mul', [x2, t.cos]), g.op('Mul', [x1, t.sin])]);
  return g.op('Concat', [lo, hi], { axis: 2 }, output);
}

/** Pre-attention: RMSNorm, fused q/k/v GEMM (+bias), RoPE on q and k. Writes graph outputs q, k, v. */
function preAttention(g: GraphBuilder, c: Ctx, layer: LayerWeights, h: string, positions: string, l: number) {
  const config = c.config;
  const { hiddenSize, numHeads: H, numKvHeads: Hkv, headDim: d } = config;
  const x = rmsNorm(g, h, layer.inputNorm, config.rmsNormEps, `l${l}_in`);
  const qkv = linear(g, c, x, layer.qkv, layer.qkvBias, hiddenSize, `l${l}_qkv`);
  const [q, k, v] = [g.fresh('q'), g.fresh('k'), g.fresh('v')];
  g.opMulti('Split', [qkv, g.int64Init(`l${l}_qkv_split`, [H * d, Hkv * d, Hkv * d])], [q, k, v], { axis: 1 });
  const tables = ropeTables(g, config, positions);
  rope(g, q, H, d, tables, 'q');
  rope(g, k, Hkv, d, tables, 'k');
  g.op('Reshape', [v, g.int64Init('v_shape', [-1, Hkv, d])], {}, 'v');
}

/** Post-attention: O projection, residual, RMSNorm, SwiGLU MLP, residual. */
function postAttention(g: GraphBuilder, c: Ctx, layer: LayerWeights, h: string, attn: string, l: number) {
  const config = c.config;
  const { hiddenSize, intermediateSize: I, numHeads: H, headDim: d } = config;
  const o = linear(g, c, attn, layer.o, layer.oBias, H * d, `l${l}_o`);
  const h1 = g.op('Add', [h, o]);
  const x = rmsNorm(g, h1, layer.postNorm, config.rmsNormEps, `l${l}_post`);
  const gu = linear(g, c, x, layer.gateUp, layer.gateUpBias, hiddenSize, `l${l}_gateup`);
  const [gate, up] = [g.fresh('gate'), g.fresh('up')];
  g.opMulti('Split', [gu, g.int64Init(`l${l}_gu_split`, [I, I])], [gate, up], { axis: 1 });
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  const down = linear(g, c, act, layer.down, layer.downBias, I, `l${l}_down`);
  return g.op('Add', [h1, down]);
}

const qkvOutputs = (c: ModelConfig) => [
  valueInfo('q', F, ['m', c.numHeads, c.headDim]),
  valueInfo('k', F, ['m', c.numKvHeads, c.headDim]),
  valueInfo('v', F, ['m', c.numKvHeads, c.headDim]),
];

function buildFirst(c: Ctx, weights: ModelWeights): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  const embed = g.floatInit('embed', [config.vocabSize, config.hiddenSize], weights.embed);
  g.op('Gather', [embed, 'ids'], { axis: 0 }, 'h');
  preAttention(g, c, weights.layers[0], 'h', 'positions', 0);
  return g.encode(
    [valueInfo('ids', DataType.INT64, ['m']), valueInfo('positions', F, ['m'])],
    [valueInfo('h', F, ['m', config.hiddenSize]), ...qkvOutputs(config)],
  );
}

function buildMid(c: Ctx, prev: LayerWeights, layer: LayerWeights, l: number): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  const h = postAttention(g, c, prev, 'h_in', 'attn', l - 1);
  g.op('Identity', [h], {}, 'h');
  preAttention(g, c, layer, 'h', 'positions', l);
  return g.encode(
    [
      valueInfo('h_in', F, ['m', config.hiddenSize]),
      valueInfo('attn', F, ['m', config.numHeads * config.headDim]),
      valueInfo('positions', F, ['m']),
    ],
    [valueInfo('h', F, ['m', config.hiddenSize]), ...qkvOutputs(config)],
  );
}

function buildPost(c: Ctx, layer: LayerWeights, l: number): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  g.op('Identity', [postAttention(g, c, layer, 'h_in', 'attn', l)], {}, 'h');
  return g.encode(
    [valueInfo('h_in', F, ['m', config.hiddenSize]), valueInfo('attn', F, ['m', config.numHeads * config.headDim])],
    [valueInfo('h', F, ['m', config.hiddenSize])],
  );
}

function buildPre(c: Ctx, layer: LayerWeights, l: number): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  preAttention(g, c, layer, 'h', 'positions', l);
  return g.encode([valueInfo('h', F, ['m', config.hiddenSize]), valueInfo('positions', F, ['m'])], qkvOutputs(config));
}

function buildLast(c: Ctx, weights: ModelWeights): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  const L = config.numLayers;
  const h = postAttention(g, c, weights.layers[L - 1], 'h_in', 'attn', L - 1);
  const normed = rmsNorm(g, h, weights.finalNorm, config.rmsNormEps, 'final');
  g.op('Identity', [normed], {}, 'hidden');
  return g.encode(
    [valueInfo('h_in', F, ['m', config.hiddenSize]), valueInfo('attn', F, ['m', config.numHeads * config.headDim])],
    [valueInfo('hidden', F, ['m', config.hiddenSize])],
  );
}

function buildHead(c: Ctx, weights: ModelWeights): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  g.op('Identity', [linear(g, c, 'hidden', weights.lmHead, undefined, config.hiddenSize, 'lm_head')], {}, 'logits');
  return g.encode(
    [valueInfo('hidden', F, ['r', config.hiddenSize])],
    [valueInfo('logits', F, ['r', config.vocabSize])],
  );
}
