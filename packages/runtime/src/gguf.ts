import { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { float32ArrayToFloat16Bits, float32ToFloat16Bits } from '@semanticache/kv-cache';
import { type ModelConfig, parseHfConfig, ropeInverseFrequencies } from './config.js';
import { ModelLoadError } from './errors.js';
import { loadLlama2cCheckpoint } from './llama2c.js';
import { HfTextTokenizer } from './tokenizer.js';
import { loadHfWeights, type ModelWeights } from './weights.js';

// GGUF v3 (ggml's file format, the one llama.cpp loads): a header of typed key/value metadata and tensor infos,
// then the tensor data, each tensor at an offset aligned to GGUF_ALIGNMENT. Everything is little-endian.

const GGUF_MAGIC = 0x46554747; // "GGUF"
const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value types. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** The ggml tensor types this writer emits. */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;

/** Values per Q4_0 / Q8_0 block (ggml's QK4_0 = QK8_0): a row must hold a whole number of blocks. */
export const GGML_BLOCK_VALUES = 32;
/** Bytes per block: an fp16 scale, then 32 int8 (Q8_0) or 32 packed 4-bit values (Q4_0). */
export const Q8_0_BLOCK_BYTES = 2 + GGML_BLOCK_VALUES;
export const Q4_0_BLOCK_BYTES = 2 + GGML_BLOCK_VALUES / 2;

/** llama.cpp's token types (`tokenizer.ggml.token_type`). */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** `general.file_type`: all tensors F32, or the matrices F16 / Q4_0 / Q8_0 (norms stay F32). */
const FileType = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q4_0: 2, MOSTLY_Q8_0: 7 } as const;

export type GgufWeightType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
const WEIGHT_TYPES: Record<GgufWeightType, { matrix: GgmlTypeId; file: number }> = {
  f32: { matrix: GgmlType.F32, file: FileType.ALL_F32 },
  f16: { matrix: GgmlType.F16, file: FileType.MOSTLY_F16 },
  q8_0: { matrix: GgmlType.Q8_0, file: FileType.MOSTLY_Q8_0 },
  q4_0: { matrix: GgmlType.Q4_0, file: FileType.MOSTLY_Q4_0 },
};
type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

export interface WriteGgufOptions {
  /**
   * Storage of the 2-D weight matrices (default 'f32'): F32, F16, or ggml's blocks of 32 (Q8_0, Q4_0; every row's
   * length must then be a multiple of 32). Norm vectors and RoPE factors are always F32.
   */
  weightType?: GgufWeightType;
  /** llama.2c checkpoints: the `tokenizer.bin` (default: `tok<vocab>.bin` or `tokenizer.bin` next to the model). */
  tokenizerPath?: string;
  /** `general.name` (default: the folder or file name). */
  name?: string;
}

export interface GgufSummary {
  file: string;
  bytes: number;
  tensorCount: number;
  /** Bytes of tensor data (weights, norms and RoPE factors), without the header. */
  tensorBytes: number;
  weightType: GgufWeightType;
  /** `tokenizer.ggml.model`: byte-level BPE (`gpt2`) or SentencePiece-style with scores (`llama`). */
  tokenizerModel: 'gpt2' | 'llama';
}

type MetaValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: string[] }
  | { type: 'i32[]'; value: ArrayLike<number> }
  | { type: 'f32[]'; value: ArrayLike<number> };

interface TensorEntry {
  name: string;
  /** ggml order: `dims[0]` varies fastest (a PyTorch `[out][in]` matrix is `[in, out]`). */
  dims: number[];
  type: GgmlTypeId;
  data: Float32Array;
}

interface Vocabulary {
  model: 'gpt2' | 'llama';
  meta: [string, MetaValue][];
}

/**
 * Converts a checkpoint that `loadModel` reads (an HF Llama / Mistral folder, or a llama2.c `.bin` with its
 * tokenizer) into a GGUF v3 file for llama.cpp's `llama` architecture: hyperparameters, the tokenizer (vocabulary,
 * merges or scores, token types, special ids) and the weights as F32, F16, Q8_0 or Q4_0. The file is written next to `outPath`
 * and renamed into place, so a failed conversion never leaves a partial file behind.
 */
export function writeGguf(modelDirOrFile: string, outPath: string, options: WriteGgufOptions = {}): GgufSummary {
  if (typeof modelDirOrFile !== 'string' || modelDirOrFile.length === 0) {
    throw new TypeError('modelDirOrFile must be a non-empty string');
  }
  if (typeof outPath !== 'string' || outPath.length === 0) throw new TypeError('outPath must be a non-empty string');
  const weightType = options.weightType ?? 'f32';
  if (!Object.hasOwn(WEIGHT_TYPES, weightType)) {
    throw new TypeError(`weightType: expected 'f32', 'f16', 'q8_0' or 'q4_0', got ${String(weightType)}`);
  }
  if (!existsSync(modelDirOrFile)) throw new ModelLoadError('no such file or directory', { file: modelDirOrFile });

  let config: ModelConfig;
  let weights: ModelWeights;
  let vocab: Vocabulary;
  if (statSync(modelDirOrFile).isDirectory()) {
    const configPath = path.join(modelDirOrFile, 'config.json');
    if (!existsSync(configPath)) throw new ModelLoadError('config.json not found', { file: configPath });
    const genPath = path.join(modelDirOrFile, 'generation_config.json');
    config = parseHfConfig(readJson(configPath), configPath, existsSync(genPath) ? readJson(genPath) : undefined);
    checkSupported(config, configPath);
    weights = loadHfWeights(modelDirOrFile, config);
    vocab = hfVocabulary(modelDirOrFile, config);
  } else if (modelDirOrFile.endsWith('.bin')) {
    ({ config, weights } = loadLlama2cCheckpoint(modelDirOrFile));
    const dir = path.dirname(modelDirOrFile);
    const tokPath =
      options.tokenizerPath ??
      [`tok${config.vocabSize}.bin`, 'tokenizer.bin'].map((f) => path.join(dir, f)).find((f) => existsSync(f));
    if (!tokPath) {
      throw new ModelLoadError(
        `no tokenizer next to the checkpoint (tok${config.vocabSize}.bin or tokenizer.bin); pass tokenizerPath`,
        { file: modelDirOrFile },
      );
    }
    vocab = llama2cVocabulary(tokPath, config.vocabSize);
  } else {
    throw new ModelLoadError('expected an HF checkpoint folder or a llama2.c .bin file', { file: modelDirOrFile });
  }

  const name = options.name ?? path.basename(path.resolve(modelDirOrFile)).replace(/\.bin$/, '');
  const meta: [string, MetaValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: name }],
    ['general.alignment', { type: 'u32', value: GGUF_ALIGNMENT }],
    ['general.file_type', { type: 'u32', value: WEIGHT_TYPES[weightType].file }],
    ...hyperparameters(config),
    ...vocab.meta,
  ];
  const tensors = tensorEntries(config, weights, WEIGHT_TYPES[weightType].matrix);
  const ragged = tensors.find((t) => t.type !== GgmlType.F32 && t.type !== GgmlType.F16 && !wholeBlocks(t));
  if (ragged) {
    throw new ModelLoadError(
      `weightType ${weightType} stores rows in blocks of ${GGML_BLOCK_VALUES} values, but ${ragged.name} has rows ` +
        `of ${ragged.dims[0]}; use 'f16' or 'f32' for this checkpoint`,
      { file: modelDirOrFile },
    );
  }
  const { bytes, tensorBytes } = writeFile(outPath, meta, tensors);
  return { file: outPath, bytes, tensorCount: tensors.length, tensorBytes, weightType, tokenizerModel: vocab.model };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ModelLoadError(`cannot read JSON: ${(cause as Error).message}`, { file, cause });
  }
}

/** What llama.cpp's `llama` architecture cannot express is refused rather than written as a different model. */
function checkSupported(config: ModelConfig, file: string): void {
  if (config.architecture === 'qwen2') {
    throw new ModelLoadError('model_type qwen2 is not supported by the GGUF writer (supported: llama, mistral)', {
      file,
    });
  }
  if (config.qkvBias || config.oBias || config.mlpBias) {
    throw new ModelLoadError('checkpoints with attention or MLP biases are not supported by the GGUF writer', {
      file,
    });
  }
}

function hyperparameters(c: ModelConfig): [string, MetaValue][] {
  const u32 = (value: number): MetaValue => ({ type: 'u32', value });
  const out: [string, MetaValue][] = [
    ['llama.vocab_size', u32(c.vocabSize)],
    ['llama.context_length', u32(c.maxContext)],
    ['llama.embedding_length', u32(c.hiddenSize)],
    ['llama.block_count', u32(c.numLayers)],
    ['llama.feed_forward_length', u32(c.intermediateSize)],
    ['llama.attention.head_count', u32(c.numHeads)],
    ['llama.attention.head_count_kv', u32(c.numKvHeads)],
    ['llama.attention.key_length', u32(c.headDim)],
    ['llama.attention.value_length', u32(c.headDim)],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.rmsNormEps }],
    ['llama.rope.dimension_count', u32(c.headDim)],
    ['llama.rope.freq_base', { type: 'f32', value: c.rope.theta }],
  ];
  if (c.rope.type === 'linear') {
    out.push(['llama.rope.scaling.type', { type: 'string', value: 'linear' }]);
    out.push(['llama.rope.scaling.factor', { type: 'f32', value: c.rope.factor }]);
  }
  return out;
}

/**
 * Rows of each head reordered from the "rotate half" layout (pairs (j, j + d/2)), which HF checkpoints use and the
 * runtime keeps llama2.c weights in, to the interleaved pairs (2j, 2j + 1) of llama.cpp's `llama` RoPE.
 */
export function rotateHalfToInterleaved(w: Float32Array, heads: number, headDim: number): Float32Array {
  const cols = w.length / (heads * headDim);
  if (!Number.isInteger(cols) || headDim % 2 !== 0) {
    throw new RangeError(`rotateHalfToInterleaved: ${w.length} values are not ${heads} heads × ${headDim} rows`);
  }
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let j = 0; j < half; j++) {
      out.set(w.subarray((base + j) * cols, (base + j + 1) * cols), (base + 2 * j) * cols);
      out.set(w.subarray((base + half + j) * cols, (base + half + j + 1) * cols), (base + 2 * j + 1) * cols);
    }
  }
  return out;
}

const wholeBlocks = (t: TensorEntry) => t.dims[0] % GGML_BLOCK_VALUES === 0;

function tensorEntries(c: ModelConfig, w: ModelWeights, matrixType: GgmlTypeId): TensorEntry[] {
  const matrix = (name: string, data: Float32Array, rows: number, cols: number): TensorEntry => ({
    name,
    dims: [cols, rows],
    type: matrixType,
    data,
  });
  const vector = (name: string, data: Float32Array): TensorEntry => ({
    name,
    dims: [data.length],
    type: GgmlType.F32,
    data,
  });
  const { hiddenSize: h, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = c;
  const out: TensorEntry[] = [matrix('token_embd.weight', w.embed, V, h)];
  if (c.rope.type === 'llama3') {
    // llama.cpp divides each base frequency by its factor; the scaled frequencies are the runtime's own.
    const base = ropeInverseFrequencies({ type: 'default', theta: c.rope.theta }, d);
    const scaled = ropeInverseFrequencies(c.rope, d);
    out.push(
      vector(
        'rope_freqs.weight',
        base.map((f, i) => f / scaled[i]),
      ),
    );
  }
  w.layers.forEach((layer, l) => {
    const p = `blk.${l}.`;
    const qRows = H * d;
    const kvRows = Hkv * d;
    out.push(vector(`${p}attn_norm.weight`, layer.inputNorm));
    out.push(matrix(`${p}attn_q.weight`, rotateHalfToInterleaved(layer.qkv.subarray(0, qRows * h), H, d), qRows, h));
    out.push(
      matrix(
        `${p}attn_k.weight`,
        rotateHalfToInterleaved(layer.qkv.subarray(qRows * h, (qRows + kvRows) * h), Hkv, d),
        kvRows,
        h,
      ),
    );
    out.push(matrix(`${p}attn_v.weight`, layer.qkv.subarray((qRows + kvRows) * h), kvRows, h));
    out.push(matrix(`${p}attn_output.weight`, layer.o, h, qRows));
    out.push(vector(`${p}ffn_norm.weight`, layer.postNorm));
    out.push(matrix(`${p}ffn_gate.weight`, layer.gateUp.subarray(0, I * h), I, h));
    out.push(matrix(`${p}ffn_up.weight`, layer.gateUp.subarray(I * h), I, h));
    out.push(matrix(`${p}ffn_down.weight`, layer.down, h, I));
  });
  out.push(vector('output_norm.weight', w.finalNorm));
  // A tied head has no tensor of its own: llama.cpp then uses token_embd as the output matrix.
  if (!c.tieWordEmbeddings) out.push(matrix('output.weight', w.lmHead, V, h));
  return out;
}

// --- tokenizers -------------------------------------------------------------------------------------------------

interface TokenizerJson {
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: { type?: string; use_regex?: boolean } | null;
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
}

/**
 * An HF `tokenizer.json` with a byte-level BPE model and GPT-2's pre-tokenizer regex (what `ByteLevel` with
 * `use_regex` splits by): llama.cpp's `gpt2` tokenizer with the `gpt-2` pre-tokenizer. Token strings stay in their
 * byte-level form, as llama.cpp expects. Whether BOS / EOS are added is read from what the tokenizer itself does.
 */
function hfVocabulary(dir: string, config: ModelConfig): Vocabulary {
  const file = path.join(dir, 'tokenizer.json');
  if (!existsSync(file)) throw new ModelLoadError('tokenizer.json not found (GGUF needs the vocabulary)', { file });
  const json = readJson(file) as TokenizerJson;
  const model = json?.model;
  if (model?.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null) {
    throw new ModelLoadError(`tokenizer model ${JSON.stringify(model?.type)} is not supported (byte-level BPE only)`, {
      file,
    });
  }
  const pre = json.pre_tokenizer;
  if (pre?.type !== 'ByteLevel' || pre.use_regex === false) {
    throw new ModelLoadError(
      `pre-tokenizer ${JSON.stringify(pre?.type ?? null)} is not supported (ByteLevel with GPT-2's regex only)`,
      { file },
    );
  }
  const V = config.vocabSize;
  const tokens: (string | undefined)[] = new Array(V);
  const types = new Int32Array(V).fill(TokenType.NORMAL);
  const place = (text: string, id: unknown, type: number) => {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= V) {
      throw new ModelLoadError(`token ${JSON.stringify(text)} has id ${String(id)} outside the vocabulary [0, ${V})`, {
        file,
      });
    }
    tokens[id as number] = text;
    types[id as number] = type;
  };
  for (const [text, id] of Object.entries(model.vocab)) place(text, id, TokenType.NORMAL);
  for (const t of json.added_tokens ?? []) {
    place(t.content, t.id, t.special ? TokenType.CONTROL : TokenType.USER_DEFINED);
  }
  // The embedding may have more rows than the tokenizer has ids; llama.cpp needs a string for every row.
  const strings = Array.from(tokens, (t, i) => {
    if (t !== undefined) return t;
    types[i] = TokenType.UNUSED;
    return `[PAD${i}]`;
  });
  const merges = (model.merges ?? []).map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && m.every((s) => typeof s === 'string')) return `${m[0]} ${m[1]}`;
    throw new ModelLoadError(`merge ${i} is neither "a b" nor ["a", "b"]`, { file });
  });

  const configPath = path.join(dir, 'tokenizer_config.json');
  const tokenizer = HfTextTokenizer.fromFiles(file, existsSync(configPath) ? configPath : undefined);
  const plain = tokenizer.encode('a', { addSpecialTokens: false });
  const special = tokenizer.encode('a', { addSpecialTokens: true });
  const bos = config.bosTokenId;
  const eos = config.eosTokenIds[0];
  const addsBos = special.length > plain.length && bos !== undefined && special[0] === bos;
  const addsEos = special.length > plain.length && eos !== undefined && special[special.length - 1] === eos;

  const meta: [string, MetaValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: strings }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: types }],
    ['tokenizer.ggml.merges', { type: 'string[]', value: merges }],
  ];
  if (bos !== undefined) meta.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: bos }]);
  if (eos !== undefined) meta.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: eos }]);
  meta.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: addsBos }]);
  meta.push(['tokenizer.ggml.add_eos_token', { type: 'bool', value: addsEos }]);
  return { model: 'gpt2', meta };
}

const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

/**
 * A llama2.c `tokenizer.bin` (SentencePiece vocabulary with scores, byte fallback): llama.cpp's `llama` tokenizer.
 * llama2.c stores SentencePiece's `▁` as a space; GGUF keeps the `▁`. Ids 0 / 1 / 2 are `<unk>` / BOS / EOS.
 */
function llama2cVocabulary(file: string, vocabSize: number): Vocabulary {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw new ModelLoadError('cannot read llama2.c tokenizer', { file, cause });
  }
  const tokens: string[] = [];
  const scores = new Float32Array(vocabSize);
  const types = new Int32Array(vocabSize);
  const utf8 = new TextDecoder('utf-8');
  let at = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (at + 8 > bytes.length) throw new ModelLoadError(`truncated at token ${id} of ${vocabSize}`, { file });
    scores[id] = bytes.readFloatLE(at);
    const len = bytes.readInt32LE(at + 4);
    at += 8;
    if (len < 0 || at + len > bytes.length) {
      throw new ModelLoadError(`invalid piece length ${len} at token ${id}`, { file });
    }
    const text = utf8.decode(bytes.subarray(at, at + len));
    at += len;
    if (id === 0) {
      tokens.push('<unk>');
      types[id] = TokenType.UNKNOWN;
    } else if (id === 1 || id === 2) {
      tokens.push(id === 1 ? '<s>' : '</s>');
      types[id] = TokenType.CONTROL;
    } else if (BYTE_PIECE.test(text)) {
      tokens.push(text);
      types[id] = TokenType.BYTE;
    } else {
      tokens.push(text.replaceAll(' ', '\u2581'));
      types[id] = TokenType.NORMAL;
    }
  }
  if (at !== bytes.length) {
    throw new ModelLoadError(`${bytes.length - at} trailing bytes after ${vocabSize} tokens`, { file });
  }
  return {
    model: 'llama',
    meta: [
      ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
      ['tokenizer.ggml.pre', { type: 'string', value: 'default' }],
      ['tokenizer.ggml.tokens', { type: 'string[]', value: tokens }],
      ['tokenizer.ggml.scores', { type: 'f32[]', value: scores }],
      ['tokenizer.ggml.token_type', { type: 'i32[]', value: types }],
      ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
      ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 1 }],
      ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 2 }],
      ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
      ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ],
  };
}

// --- encoding ---------------------------------------------------------------------------------------------------

/** Appends little-endian values to a list of chunks. */
class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;

  private push(buf: Buffer): void {
    this.chunks.push(buf);
    this.length += buf.length;
  }
  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  raw(buf: Buffer): void {
    this.push(buf);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

function writeValue(out: ByteWriter, key: string, v: MetaValue): void {
  const scalar = (type: number) => out.u32(type);
  switch (v.type) {
    case 'u32':
      if (!Number.isInteger(v.value) || v.value < 0 || v.value > 0xffffffff) {
        throw new RangeError(`metadata ${key}: ${v.value} is not a uint32`);
      }
      scalar(GgufValueType.UINT32);
      out.u32(v.value);
      return;
    case 'f32': {
      scalar(GgufValueType.FLOAT32);
      const b = Buffer.allocUnsafe(4);
      b.writeFloatLE(v.value);
      out.raw(b);
      return;
    }
    case 'bool':
      scalar(GgufValueType.BOOL);
      out.raw(Buffer.of(v.value ? 1 : 0));
      return;
    case 'string':
      scalar(GgufValueType.STRING);
      out.string(v.value);
      return;
    case 'string[]':
      scalar(GgufValueType.ARRAY);
      out.u32(GgufValueType.STRING);
      out.u64(v.value.length);
      for (const s of v.value) out.string(s);
      return;
    case 'i32[]':
    case 'f32[]': {
      scalar(GgufValueType.ARRAY);
      out.u32(v.type === 'i32[]' ? GgufValueType.INT32 : GgufValueType.FLOAT32);
      out.u64(v.value.length);
      const b = Buffer.allocUnsafe(4 * v.value.length);
      for (let i = 0; i < v.value.length; i++) {
        if (v.type === 'i32[]') b.writeInt32LE(v.value[i], 4 * i);
        else b.writeFloatLE(v.value[i], 4 * i);
      }
      out.raw(b);
      return;
    }
  }
}

const alignUp = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

function tensorBytes(t: TensorEntry): number {
  const blocks = t.data.length / GGML_BLOCK_VALUES;
  switch (t.type) {
    case GgmlType.F32:
      return 4 * t.data.length;
    case GgmlType.F16:
      return 2 * t.data.length;
    case GgmlType.Q8_0:
      return blocks * Q8_0_BLOCK_BYTES;
    case GgmlType.Q4_0:
      return blocks * Q4_0_BLOCK_BYTES;
  }
}

function encodeTensor(t: TensorEntry): Uint8Array {
  const asBytes = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.type) {
    case GgmlType.F32:
      return asBytes(t.data);
    case GgmlType.F16:
      return asBytes(float32ArrayToFloat16Bits(t.data));
    case GgmlType.Q8_0:
      return quantizeQ8_0(t.data);
    case GgmlType.Q4_0:
      return quantizeQ4_0(t.data);
  }
}

function checkBlocks(values: Float32Array, format: string): void {
  if (values.length % GGML_BLOCK_VALUES !== 0) {
    throw new RangeError(`${format}: ${values.length} values are not whole blocks of ${GGML_BLOCK_VALUES}`);
  }
}

/**
 * ggml's Q8_0 blocks (its reference quantizer's rule): per 32 values an fp16 scale d = max|x| / 127, then the 32
 * values as int8 round(x / d), rounded half away from zero. The arithmetic is float32, as in ggml.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  checkBlocks(values, 'quantizeQ8_0');
  const out = new Uint8Array((values.length / GGML_BLOCK_VALUES) * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  const q = new Int8Array(out.buffer);
  for (let x0 = 0, at = 0; x0 < values.length; x0 += GGML_BLOCK_VALUES, at += Q8_0_BLOCK_BYTES) {
    let amax = 0;
    for (let j = 0; j < GGML_BLOCK_VALUES; j++) amax = Math.max(amax, Math.abs(values[x0 + j]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(at, float32ToFloat16Bits(d), true);
    for (let j = 0; j < GGML_BLOCK_VALUES; j++) {
      const v = Math.fround(values[x0 + j] * id);
      q[at + 2 + j] = Math.sign(v) * Math.round(Math.abs(v));
    }
  }
  return out;
}

/**
 * ggml's Q4_0 blocks: per 32 values an fp16 scale d = m / -8, m the value of largest magnitude (with its sign), then
 * 16 bytes; byte j holds value j in its low nibble and value j + 16 in its high nibble, each as
 * min(15, trunc(x / d + 8.5)), so that m itself is 0 and the other extreme clamps to 15.
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  checkBlocks(values, 'quantizeQ4_0');
  const half = GGML_BLOCK_VALUES / 2;
  const out = new Uint8Array((values.length / GGML_BLOCK_VALUES) * Q4_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  const nibble = (x: number, id: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(x * id) + 8.5)));
  for (let x0 = 0, at = 0; x0 < values.length; x0 += GGML_BLOCK_VALUES, at += Q4_0_BLOCK_BYTES) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < GGML_BLOCK_VALUES; j++) {
      const v = values[x0 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(at, float32ToFloat16Bits(d), true);
    for (let j = 0; j < half; j++) {
      out[at + 2 + j] = nibble(values[x0 + j], id) | (nibble(values[x0 + half + j], id) << 4);
    }
  }
  return out;
}

function writeFile(
  outPath: string,
  meta: [string, MetaValue][],
  tensors: TensorEntry[],
): { bytes: number; tensorBytes: number } {
  const header = new ByteWriter();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(meta.length);
  for (const [key, value] of meta) {
    header.string(key);
    writeValue(header, key, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new RangeError(`tensor ${t.name}: dims ${t.dims.join('×')} do not hold ${t.data.length} values`);
    }
    header.string(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(d);
    header.u32(t.type);
    header.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + tensorBytes(t));
  }
  const head = header.toBuffer();
  const dataStart = alignUp(head.length);

  const tmp = `${outPath}.partial-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (cause) {
    throw new ModelLoadError(`cannot write the GGUF file: ${(cause as Error).message}`, { file: outPath, cause });
  }
  let at = 0;
  const put = (buf: Uint8Array) => {
    for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, at + done);
    at += buf.length;
  };
  try {
    put(head);
    put(new Uint8Array(dataStart - head.length));
    tensors.forEach((t, i) => {
      put(new Uint8Array(dataStart + offsets[i] - at)); // padding to the tensor's aligned offset
      put(encodeTensor(t));
    });
    closeSync(fd);
    renameSync(tmp, outPath);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
  return { bytes: at, tensorBytes: tensors.reduce((n, t) => n + tensorBytes(t), 0) };
}
