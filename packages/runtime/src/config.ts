import { ModelLoadError } from './errors.js';

export type RopeConfig =
  | { type: 'default'; theta: number }
  | { type: 'linear'; theta: number; factor: number }
  | {
      type: 'llama3';
      theta: number;
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** Normalised decoder configuration shared by every checkpoint format. */
export interface ModelConfig {
  /** `llama`, `mistral`, `qwen2` (HF `model_type`) or `llama2c`. */
  architecture: 'llama' | 'mistral' | 'qwen2' | 'llama2c';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  /** Longest context the model supports (for Mistral with a sliding window, the window: attention here is full). */
  maxContext: number;
  tieWordEmbeddings: boolean;
  /** Biases on the q/k/v projections (Qwen2; Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama with attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  rope: RopeConfig;
  bosTokenId: number | undefined;
  /** Generation ends when one of these is produced. */
  eosTokenIds: number[];
}

const SUPPORTED = new Set(['llama', 'mistral', 'qwen2']);

function positiveInt(raw: Record<string, unknown>, key: string, file: string): number {
  const v = raw[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new ModelLoadError(`config field ${key} must be a positive integer, got ${JSON.stringify(v)}`, { file });
  }
  return v as number;
}

function positiveNumber(v: unknown, key: string, file: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelLoadError(`config field ${key} must be a positive number, got ${JSON.stringify(v)}`, { file });
  }
  return v;
}

function tokenIds(v: unknown): number[] {
  if (Number.isSafeInteger(v)) return [v as number];
  if (Array.isArray(v)) return v.filter((x) => Number.isSafeInteger(x));
  return [];
}

function parseRope(raw: Record<string, unknown>, file: string): RopeConfig {
  // transformers ≥ 5 writes `rope_parameters` (theta inside); older configs use `rope_theta` + `rope_scaling`.
  const params = (raw.rope_parameters ?? raw.rope_scaling ?? {}) as Record<string, unknown>;
  if (typeof params !== 'object' || params === null) {
    throw new ModelLoadError('rope_parameters / rope_scaling must be an object', { file });
  }
  const theta = positiveNumber(params.rope_theta ?? raw.rope_theta ?? 10000, 'rope_theta', file);
  const type = (params.rope_type ?? params.type ?? 'default') as string;
  if (type === 'default') return { type, theta };
  if (type === 'linear') return { type, theta, factor: positiveNumber(params.factor, 'rope factor', file) };
  if (type === 'llama3') {
    return {
      type,
      theta,
      factor: positiveNumber(params.factor, 'rope factor', file),
      lowFreqFactor: positiveNumber(params.low_freq_factor, 'low_freq_factor', file),
      highFreqFactor: positiveNumber(params.high_freq_factor, 'high_freq_factor', file),
      originalMaxPositionEmbeddings: positiveNumber(
        params.original_max_position_embeddings,
        'original_max_position_embeddings',
        file,
      ),
    };
  }
  throw new ModelLoadError(`unsupported rope type ${JSON.stringify(type)} (supported: default, linear, llama3)`, {
    file,
  });
}

/** Parses an HF `config.json` object (plus `generation_config.json` for EOS ids, if present). */
export function parseHfConfig(raw: unknown, file: string, generation?: unknown): ModelConfig {
  if (raw === null || typeof raw !== 'object') throw new ModelLoadError('config is not a JSON object', { file });
  const c = raw as Record<string, unknown>;
  const modelType = c.model_type;
  if (typeof modelType !== 'string' || !SUPPORTED.has(modelType)) {
    throw new ModelLoadError(
      `unsupported model_type ${JSON.stringify(modelType)} (supported: ${[...SUPPORTED].join(', ')})`,
      { file },
    );
  }
  if (c.hidden_act !== undefined && c.hidden_act !== 'silu') {
    throw new ModelLoadError(`unsupported hidden_act ${JSON.stringify(c.hidden_act)} (only silu)`, { file });
  }
  const hiddenSize = positiveInt(c, 'hidden_size', file);
  const numHeads = positiveInt(c, 'num_attention_heads', file);
  const numKvHeads = c.num_key_value_heads == null ? numHeads : positiveInt(c, 'num_key_value_heads', file);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`, {
      file,
    });
  }
  const headDim = c.head_dim == null ? hiddenSize / numHeads : positiveInt(c, 'head_dim', file);
  if (!Number.isSafeInteger(headDim) || headDim % 2 !== 0) {
    throw new ModelLoadError(`head dimension ${headDim} must be an even integer`, { file });
  }
  let maxContext = positiveInt(c, 'max_position_embeddings', file);
  if (modelType === 'mistral' && Number.isSafeInteger(c.sliding_window) && c.use_sliding_window !== false) {
    maxContext = Math.min(maxContext, c.sliding_window as number);
  }
  const numLayers = positiveInt(c, 'num_hidden_layers', file);
  // transformers ≥ 5 writes one `layer_types` entry per layer (and rejects a config where the two disagree).
  if (Array.isArray(c.layer_types) && c.layer_types.length !== numLayers) {
    throw new ModelLoadError(`layer_types has ${c.layer_types.length} entries but num_hidden_layers is ${numLayers}`, {
      file,
    });
  }
  const attentionBias = c.attention_bias === true;
  const gen = (generation ?? {}) as Record<string, unknown>;
  const eos = tokenIds(gen.eos_token_id ?? c.eos_token_id);
  const bos = gen.bos_token_id ?? c.bos_token_id;
  return {
    architecture: modelType as ModelConfig['architecture'],
    vocabSize: positiveInt(c, 'vocab_size', file),
    hiddenSize,
    intermediateSize: positiveInt(c, 'intermediate_size', file),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(c.rms_norm_eps ?? 1e-6, 'rms_norm_eps', file),
    maxContext,
    tieWordEmbeddings: c.tie_word_embeddings === true,
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: modelType !== 'qwen2' && attentionBias,
    mlpBias: c.mlp_bias === true,
    rope: parseRope(c, file),
    bosTokenId: Number.isSafeInteger(bos) ? (bos as number) : undefined,
    eosTokenIds: eos,
  };
}

/** RoPE inverse frequencies (fp32, as HF computes them), including llama3 / linear scaling. */
export function ropeInverseFrequencies(rope: RopeConfig, headDim: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    inv[i] = Math.fround(1 / Math.fround(rope.theta ** Math.fround((2 * i) / headDim)));
  }
  if (rope.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = Math.fround(inv[i] / rope.factor);
  } else if (rope.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldLen } = rope;
    const lowFreqWavelen = oldLen / lowFreqFactor;
    const highFreqWavelen = oldLen / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) continue;
      if (wavelen > lowFreqWavelen) {
        inv[i] = Math.fround(f / factor);
      } else {
        const smooth = (oldLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = Math.fround((1 - smooth) * (f / factor) + smooth * f);
      }
    }
  }
  return inv;
}
