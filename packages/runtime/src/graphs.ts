import type { ModelConfig } from './config.js';
import { DataType, GraphBuilder, valueInfo } from './onnx-builder.js';
import { QUANT_BLOCK, type QuantBits, quantizeBlocks } from './quantize.js';
import type { LayerWeights, ModelWeights } from './weights.js';

/**
 * The dense math of the decoder as a chain of small ONNX graphs; attention happens between them, outside ORT.
 *   first:    h, cos, sin           → q, k, v           (pre-attention of layer 0; h: the embedded rows, looked up
 *                                                      by the caller from the table as stored, see embedding.ts)
 *   mid(l):   h, attn(l-1), cos, sin → h, q, k, v       (post-attention of layer l-1 fused with pre-attention of l)
 *   last:     h, attn(L-1)          → normed hidden    (post-attention of the last layer + final norm)
 *   head:     normed hidden rows    → logits
 * Fusing post(l-1) with pre(l) makes L + 2 session runs per step instead of 2L + 1 (`fuse: false` builds the
 * unfused pair per layer, kept to measure the difference).
 * q, k and v come out token-major (rows of H·d and Hkv·d: what the cache and the kernel take); RoPE is applied to
 * q and k inside the graph from angle tables the caller computes once per block ({@link ropeTables}), so positions
 * can keep counting after compression. Norms, residual adds and RoPE are ORT's fused kernels
 * (SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization, RotaryEmbedding): a decode step is dominated by
 * per-node overhead once the weights are quantized, so fewer nodes run faster.
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

/**
 * Each graph of a {@link GraphSet}, built when called: a loader builds one, hands it to ORT and drops the bytes before
 * building the next, so the whole model's graph bytes never exist at once. Each reads only the weights it holds.
 */
export interface GraphBuilders {
  first(): Uint8Array;
  /** layer l = 1..L-1 */
  mid(l: number): GraphSet['mid'][number];
  last(): Uint8Array;
  head(): Uint8Array;
}

export function graphBuilders(config: ModelConfig, weights: ModelWeights, options: GraphOptions = {}): GraphBuilders {
  const format = options.weightFormat ?? 'float32';
  const c: Ctx = {
    config,
    bits: format === 'int8' ? 8 : format === 'int4' ? 4 : undefined,
    accuracyLevel: options.quantizedActivations === false ? 0 : 4,
  };
  const fuse = options.fuse ?? true;
  return {
    first: () => buildPre(c, weights.layers[0], 0),
    mid: (l) => {
      const [prev, layer] = [weights.layers[l - 1], weights.layers[l]];
      return fuse ? buildMid(c, prev, layer, l) : { post: buildPost(c, prev, l - 1), pre: buildPre(c, layer, l) };
    },
    last: () => buildLast(c, weights),
    head: () => buildHead(c, weights),
  };
}

/** A graph of the load order: `first`, `head`, `last`, or the number l of `mid(l)`. */
export type GraphKey = 'first' | 'head' | 'last' | number;

export type BuiltGraph = GraphSet['mid'][number];

/**
 * The order a loader builds the graphs in and hands them to ORT: first, head, mid(1…L−1), last. The head (often the
 * largest graph: a vocabulary-sized matrix) comes early, while ORT holds little: last, its creation's transient
 * copies came on top of every layer's weights, and a 0.5B fp32 load measured 8.0 s and 3682 MiB peak RSS against
 * 5.3 s and 2812 MiB (bench:load).
 */
export function graphLoadOrder(numLayers: number): GraphKey[] {
  return ['first', 'head', ...Array.from({ length: numLayers - 1 }, (_, i) => i + 1), 'last'];
}

export function buildGraph(build: GraphBuilders, key: GraphKey): BuiltGraph {
  return typeof key === 'number' ? build.mid(key) : build[key]();
}

/** Every graph at once (what tests and tools inspect; loading goes through {@link graphBuilders}). */
export function buildGraphs(config: ModelConfig, weights: ModelWeights, options: GraphOptions = {}): GraphSet {
  const build = graphBuilders(config, weights, options);
  const mid: GraphSet['mid'] = [];
  for (let l = 1; l < config.numLayers; l++) mid.push(build.mid(l));
  return { first: build.first(), mid, last: build.last(), head: build.head() };
}

const F = DataType.FLOAT;

/** HF's RMSNorm (x · rsqrt(mean(x²) + eps) · weight, in fp32) as one ORT kernel. */
function rmsNorm(g: GraphBuilder, x: string, weight: Float32Array, eps: number, tag: string): string {
  return g.op('SimplifiedLayerNormalization', [x, g.floatInit(`${tag}_w`, [weight.length], weight)], {
    axis: -1,
    epsilon: { float: eps },
    stash_type: 1,
  });
}

/** The residual add a + b and the RMSNorm of the sum, in one ORT kernel; `sumName` names the sum (else unnamed). */
function addRmsNorm(
  g: GraphBuilder,
  a: string,
  b: string,
  weight: Float32Array,
  eps: number,
  tag: string,
  names: { normed?: string; sum?: string } = {},
): { normed: string; sum: string } {
  const normed = names.normed ?? g.fresh('normed');
  const sum = names.sum ?? '';
  g.opMulti(
    'SkipSimplifiedLayerNormalization',
    [a, b, g.floatInit(`${tag}_w`, [weight.length], weight)],
    [normed, '', '', sum],
    { epsilon: { float: eps } },
    'com.microsoft',
  );
  return { normed, sum };
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

/**
 * Pre-attention of normed rows x: fused q/k/v GEMM (+bias), RoPE on q and k together (one RotaryEmbedding over
 * the H + Hkv heads), outputs q, k, v. The rotation angles come in as the graph inputs `cos` and `sin`
 * ([m, d/2], row i for the block's token i, see {@link ropeTables}), so positions can keep counting after
 * compression and no graph computes them again.
 */
function preAttention(g: GraphBuilder, c: Ctx, layer: LayerWeights, x: string, l: number) {
  const { hiddenSize, numHeads: H, numKvHeads: Hkv, headDim: d } = c.config;
  const qkv = linear(g, c, x, layer.qkv, layer.qkvBias, hiddenSize, `l${l}_qkv`);
  const qk = g.fresh('qk');
  g.opMulti('Split', [qkv, g.int64Init(`l${l}_qkv_split`, [(H + Hkv) * d, Hkv * d])], [qk, 'v'], { axis: 1 });
  const batched = g.op('Unsqueeze', [qk, g.int64Init('batch_axis', [0])]); // [1, m, (H + Hkv)·d]
  const rotated = g.op(
    'RotaryEmbedding',
    [batched, g.int64Init('rope_start', [0]), 'cos', 'sin'],
    { num_heads: H + Hkv, interleaved: 0 },
    undefined,
    'com.microsoft',
  );
  g.opMulti('Split', [rotated, g.int64Init('q_k_split', [H * d, Hkv * d])], ['q', 'k'], { axis: 2 });
}

/**
 * Post-attention up to the MLP output: O projection, residual add + RMSNorm (one kernel), SwiGLU MLP. Returns the
 * residual stream h + o and the MLP's output, whose add the caller fuses with the next norm.
 */
function postAttention(g: GraphBuilder, c: Ctx, layer: LayerWeights, h: string, attn: string, l: number) {
  const config = c.config;
  const { hiddenSize, intermediateSize: I, numHeads: H, headDim: d } = config;
  const o = linear(g, c, attn, layer.o, layer.oBias, H * d, `l${l}_o`);
  const { normed: x, sum: residual } = addRmsNorm(g, h, o, layer.postNorm, config.rmsNormEps, `l${l}_post`, {
    sum: g.fresh('residual'),
  });
  const gu = linear(g, c, x, layer.gateUp, layer.gateUpBias, hiddenSize, `l${l}_gateup`);
  const [gate, up] = [g.fresh('gate'), g.fresh('up')];
  g.opMulti('Split', [gu, g.int64Init(`l${l}_gu_split`, [I, I])], [gate, up], { axis: 1 });
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  return { residual, mlp: linear(g, c, act, layer.down, layer.downBias, I, `l${l}_down`) };
}

const ropeInputs = (c: ModelConfig) => [
  valueInfo('cos', F, ['m', c.headDim / 2]),
  valueInfo('sin', F, ['m', c.headDim / 2]),
];

// Only the data of q, k and v is read (token-major: [m, H·d], [m, Hkv·d]), so they keep the shapes the graph makes.
const qkvOutputs = (c: ModelConfig) => [
  valueInfo('q', F, [1, 'm', c.numHeads * c.headDim]),
  valueInfo('k', F, [1, 'm', c.numKvHeads * c.headDim]),
  valueInfo('v', F, ['m', c.numKvHeads * c.headDim]),
];

function buildMid(c: Ctx, prev: LayerWeights, layer: LayerWeights, l: number): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  const { residual, mlp } = postAttention(g, c, prev, 'h_in', 'attn', l - 1);
  const { normed } = addRmsNorm(g, residual, mlp, layer.inputNorm, config.rmsNormEps, `l${l}_in`, { sum: 'h' });
  preAttention(g, c, layer, normed, l);
  return g.encode(
    [
      valueInfo('h_in', F, ['m', config.hiddenSize]),
      valueInfo('attn', F, ['m', config.numHeads * config.headDim]),
      ...ropeInputs(config),
    ],
    [valueInfo('h', F, ['m', config.hiddenSize]), ...qkvOutputs(config)],
  );
}

function buildPost(c: Ctx, layer: LayerWeights, l: number): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  const { residual, mlp } = postAttention(g, c, layer, 'h_in', 'attn', l);
  g.op('Add', [residual, mlp], {}, 'h');
  return g.encode(
    [valueInfo('h_in', F, ['m', config.hiddenSize]), valueInfo('attn', F, ['m', config.numHeads * config.headDim])],
    [valueInfo('h', F, ['m', config.hiddenSize])],
  );
}

function buildPre(c: Ctx, layer: LayerWeights, l: number): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  preAttention(g, c, layer, rmsNorm(g, 'h', layer.inputNorm, config.rmsNormEps, `l${l}_in`), l);
  return g.encode([valueInfo('h', F, ['m', config.hiddenSize]), ...ropeInputs(config)], qkvOutputs(config));
}

function buildLast(c: Ctx, weights: ModelWeights): Uint8Array {
  const config = c.config;
  const g = new GraphBuilder();
  const L = config.numLayers;
  const { residual, mlp } = postAttention(g, c, weights.layers[L - 1], 'h_in', 'attn', L - 1);
  addRmsNorm(g, residual, mlp, weights.finalNorm, config.rmsNormEps, 'final', { normed: 'hidden' });
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

/**
 * RoPE's angle tables for positions `start, start + 1, …` (m rows of d/2): cos and sin of position × inverse
 * frequency, the product rounded to fp32 as HF computes it. Fed to every graph of one forward pass.
 */
export function ropeTables(
  inverseFrequencies: Float32Array,
  start: number,
  m: number,
): { cos: Float32Array; sin: Float32Array } {
  const half = inverseFrequencies.length;
  const cos = new Float32Array(m * half);
  const sin = new Float32Array(m * half);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < half; j++) {
      const angle = Math.fround((start + i) * inverseFrequencies[j]);
      cos[i * half + j] = Math.cos(angle);
      sin[i * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
