import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { float16BitsToFloat32, float16BitsToFloat32Array } from '@semanticache/kv-cache';
import { afterAll, describe, expect, test } from 'vitest';
import { ropeInverseFrequencies } from './config.js';
import { ModelLoadError } from './errors.js';
import {
  GGUF_ALIGNMENT,
  GgmlType,
  GgufValueType,
  quantizeQ4_0,
  quantizeQ8_0,
  rotateHalfToInterleaved,
  writeGguf,
} from './gguf.js';
import { SafetensorsFile } from './safetensors.js';
import { demoDir, parityDir, readJson, storiesDir } from './test-support.js';

// An independent GGUF v3 reader: the file is parsed from its bytes, following the spec, not the writer's code.
interface ParsedTensor {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}
interface ParsedGguf {
  version: number;
  meta: Map<string, unknown>;
  /** Value type of each metadata entry; arrays as `array:<item type>`. */
  metaTypes: Map<string, string>;
  tensors: ParsedTensor[];
  dataStart: number;
  bytes: Buffer;
}

function parseGguf(file: string): ParsedGguf {
  const bytes = readFileSync(file);
  let at = 0;
  const u32 = () => {
    const v = bytes.readUInt32LE(at);
    at += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(bytes.readBigUInt64LE(at));
    at += 8;
    return v;
  };
  const str = () => {
    const n = u64();
    const s = bytes.toString('utf8', at, at + n);
    at += n;
    return s;
  };
  const scalar = (type: number): unknown => {
    switch (type) {
      case GgufValueType.UINT32:
        return u32();
      case GgufValueType.INT32: {
        const v = bytes.readInt32LE(at);
        at += 4;
        return v;
      }
      case GgufValueType.FLOAT32: {
        const v = bytes.readFloatLE(at);
        at += 4;
        return v;
      }
      case GgufValueType.BOOL: {
        const v = bytes[at];
        at += 1;
        if (v > 1) throw new Error(`bool byte ${v}`);
        return v === 1;
      }
      case GgufValueType.STRING:
        return str();
      default:
        throw new Error(`value type ${type} not expected from this writer`);
    }
  };
  expect(bytes.toString('latin1', 0, 4)).toBe('GGUF');
  at = 4;
  const version = u32();
  const tensorCount = u64();
  const metaCount = u64();
  const meta = new Map<string, unknown>();
  const metaTypes = new Map<string, string>();
  for (let i = 0; i < metaCount; i++) {
    const key = str();
    const type = u32();
    if (type === GgufValueType.ARRAY) {
      const itemType = u32();
      const n = u64();
      meta.set(
        key,
        Array.from({ length: n }, () => scalar(itemType)),
      );
      metaTypes.set(key, `array:${itemType}`);
    } else {
      meta.set(key, scalar(type));
      metaTypes.set(key, String(type));
    }
  }
  const tensors: ParsedTensor[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const nDims = u32();
    const dims = Array.from({ length: nDims }, () => u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = (meta.get('general.alignment') as number | undefined) ?? 32;
  const dataStart = Math.ceil(at / alignment) * alignment;
  return { version, meta, metaTypes, tensors, dataStart, bytes };
}

// ggml's block formats, from ggml-common.h: 32 values per block; Q8_0 = fp16 scale + 32 int8 (34 bytes),
// Q4_0 = fp16 scale + 16 bytes, byte j = value j (low nibble) | value j + 16 (high nibble), value = (nibble - 8) · d.
const GGML_TYPE_Q4_0 = 2;
const GGML_TYPE_Q8_0 = 8;
const QK = 32;

/** Bytes of `n` values stored as ggml type `type`. */
function storedBytes(type: number, n: number): number {
  if (type === 0) return 4 * n;
  if (type === 1) return 2 * n;
  if (type === GGML_TYPE_Q8_0) return (n / QK) * 34;
  if (type === GGML_TYPE_Q4_0) return (n / QK) * 18;
  throw new Error(`ggml type ${type} not expected from this writer`);
}

interface Dequantized {
  values: Float32Array;
  /** Per block: the stored fp16 scale, widened. */
  scales: Float32Array;
  /** Per value: its stored integer (Q8_0: -128..127; Q4_0: the nibble 0..15). */
  quants: Int32Array;
}

function dequantize(type: number, bytes: Uint8Array): Dequantized {
  const blockBytes = type === GGML_TYPE_Q8_0 ? 34 : 18;
  if (bytes.length % blockBytes !== 0) throw new Error(`${bytes.length} bytes are not whole blocks`);
  const blocks = bytes.length / blockBytes;
  const values = new Float32Array(blocks * QK);
  const scales = new Float32Array(blocks);
  const quants = new Int32Array(blocks * QK);
  for (let b = 0; b < blocks; b++) {
    const at = b * blockBytes;
    const d = float16BitsToFloat32(bytes[at] | (bytes[at + 1] << 8));
    scales[b] = d;
    for (let j = 0; j < QK; j++) {
      let q: number;
      if (type === GGML_TYPE_Q8_0) {
        q = (bytes[at + 2 + j] << 24) >> 24;
        values[b * QK + j] = q * d;
      } else {
        const byte = bytes[at + 2 + (j % 16)];
        q = j < 16 ? byte & 0x0f : byte >> 4;
        values[b * QK + j] = (q - 8) * d;
      }
      quants[b * QK + j] = q;
    }
  }
  return { values, scales, quants };
}

function tensorBytesOf(g: ParsedGguf, name: string): { info: ParsedTensor; bytes: Uint8Array } {
  const t = g.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  const start = g.dataStart + t.offset;
  return {
    info: t,
    bytes: new Uint8Array(
      g.bytes.buffer.slice(g.bytes.byteOffset + start, g.bytes.byteOffset + start + storedBytes(t.type, n)),
    ),
  };
}

function tensorData(g: ParsedGguf, name: string): Float32Array {
  const { info, bytes } = tensorBytesOf(g, name);
  if (info.type === GgmlType.F16) return float16BitsToFloat32Array(new Uint16Array(bytes.buffer));
  if (info.type === 0) return new Float32Array(bytes.buffer);
  return dequantize(info.type, bytes).values;
}

/**
 * Every dequantized value is within half a step of its source, the step being the block's scale before fp16
 * rounding (Q8_0: max|x| / 127; Q4_0: m / -8, m the value of largest magnitude), plus what rounding the scale to
 * fp16 moves a stored value by. Q4_0's nibble 15 clamps the far extreme, which may then be a whole step off.
 * Returns how many values were clamped.
 */
function expectWithinHalfStep(type: number, source: Float32Array, stored: Uint8Array): number {
  const { values, scales, quants } = dequantize(type, stored);
  expect(values.length).toBe(source.length);
  let clamped = 0;
  let worst = 0;
  for (let b = 0; b < scales.length; b++) {
    let amax = 0;
    let m = 0;
    for (let j = 0; j < QK; j++) {
      const v = source[b * QK + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        m = v;
      }
    }
    const step = type === GGML_TYPE_Q8_0 ? amax / 127 : m / -8;
    // the stored scale is the step rounded to fp16 (relative error ≤ 2^-11 for normal fp16 values)
    if (Math.abs(scales[b] - step) > Math.abs(step) * 2 ** -11 + 2 ** -25) {
      throw new Error(`block ${b}: scale ${scales[b]}, expected fp16(${step})`);
    }
    for (let j = 0; j < QK; j++) {
      const i = b * QK + j;
      const level = type === GGML_TYPE_Q8_0 ? quants[i] : quants[i] - 8;
      const isClamped = type === GGML_TYPE_Q4_0 && quants[i] === 15;
      const allowed =
        (isClamped ? 1 : 0.5) * Math.abs(step) + Math.abs(level) * Math.abs(scales[b] - step) + 1e-6 * amax;
      const err = Math.abs(values[i] - source[i]);
      if (err > allowed) {
        throw new Error(`value ${i}: ${values[i]} for ${source[i]} (step ${step}, allowed ${allowed})`);
      }
      if (isClamped && err > 0.5 * Math.abs(step) + Math.abs(level) * Math.abs(scales[b] - step)) clamped++;
      worst = Math.max(worst, err / (Math.abs(step) || 1));
    }
  }
  expect(worst).toBeGreaterThan(0); // the test sees real rounding, not a lossless copy
  return clamped;
}

/** Bit-for-bit equality of two float arrays (vitest's deep equality is slow on millions of elements). */
function expectSameValues(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  expect(bytes(a).equals(bytes(b))).toBe(true);
}

const tmp = mkdtempSync(path.join(tmpdir(), 'gguf-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every tensor's offset is aligned, the ranges do not overlap, and the file ends with the last tensor. */
function expectLayout(g: ParsedGguf): void {
  expect(g.version).toBe(3);
  expect(g.dataStart % GGUF_ALIGNMENT).toBe(0);
  let end = 0;
  for (const t of [...g.tensors].sort((a, b) => a.offset - b.offset)) {
    expect(t.offset % GGUF_ALIGNMENT, t.name).toBe(0);
    expect(t.offset, t.name).toBeGreaterThanOrEqual(end);
    end =
      t.offset +
      storedBytes(
        t.type,
        t.dims.reduce((a, b) => a * b, 1),
      );
  }
  expect(g.bytes.length).toBe(g.dataStart + end);
}

describe('writeGguf: demo model (HF Llama folder, byte-level BPE)', () => {
  const config = readJson<Record<string, number>>(path.join(demoDir, 'config.json'));
  const tokenizer = readJson<{ model: { vocab: Record<string, number>; merges: unknown[] } }>(
    path.join(demoDir, 'tokenizer.json'),
  );
  const index = readJson<{ weight_map: Record<string, string> }>(path.join(demoDir, 'model.safetensors.index.json'));
  const hfTensor = (name: string) => {
    const file = new SafetensorsFile(path.join(demoDir, index.weight_map[name]));
    try {
      return file.readFloat32(name).data;
    } finally {
      file.close();
    }
  };

  test('F32: header, llama metadata, tokenizer, tensor infos and data round-trip', () => {
    const out = path.join(tmp, 'demo-f32.gguf');
    const summary = writeGguf(demoDir, out, { weightType: 'f32' });
    const g = parseGguf(out);
    expectLayout(g);
    expect(summary).toMatchObject({ bytes: g.bytes.length, tensorCount: g.tensors.length, tokenizerModel: 'gpt2' });

    const m = g.meta;
    expect(m.get('general.architecture')).toBe('llama');
    expect(m.get('general.file_type')).toBe(0);
    expect(m.get('llama.block_count')).toBe(config.num_hidden_layers);
    expect(m.get('llama.embedding_length')).toBe(config.hidden_size);
    expect(m.get('llama.feed_forward_length')).toBe(config.intermediate_size);
    expect(m.get('llama.attention.head_count')).toBe(config.num_attention_heads);
    expect(m.get('llama.attention.head_count_kv')).toBe(config.num_key_value_heads);
    expect(m.get('llama.context_length')).toBe(config.max_position_embeddings);
    expect(m.get('llama.rope.dimension_count')).toBe(config.head_dim);
    expect(m.get('llama.rope.freq_base')).toBe(10000);
    expect(m.get('llama.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
    expect(g.metaTypes.get('llama.rope.freq_base')).toBe(String(GgufValueType.FLOAT32));
    expect(g.metaTypes.get('llama.block_count')).toBe(String(GgufValueType.UINT32));

    expect(m.get('tokenizer.ggml.model')).toBe('gpt2');
    expect(m.get('tokenizer.ggml.pre')).toBe('gpt-2');
    const tokens = m.get('tokenizer.ggml.tokens') as string[];
    expect(tokens).toHaveLength(config.vocab_size);
    for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
      if (tokens[id] !== text) expect(tokens[id], `token ${id}`).toBe(text);
    }
    const types = m.get('tokenizer.ggml.token_type') as number[];
    expect(types[0]).toBe(3); // <|endoftext|> is special: CONTROL
    expect(types.slice(1).every((t) => t === 1)).toBe(true);
    expect(g.metaTypes.get('tokenizer.ggml.token_type')).toBe(`array:${GgufValueType.INT32}`);
    const merges = m.get('tokenizer.ggml.merges') as string[];
    expect(merges).toHaveLength(tokenizer.model.merges.length);
    expect(merges.every((s) => s.split(' ').length === 2)).toBe(true);
    expect(m.get('tokenizer.ggml.bos_token_id')).toBe(0);
    expect(m.get('tokenizer.ggml.eos_token_id')).toBe(0);
    // the demo tokenizer adds no BOS (its post-processor is plain ByteLevel)
    expect(m.get('tokenizer.ggml.add_bos_token')).toBe(false);

    const L = config.num_hidden_layers;
    expect(g.tensors).toHaveLength(2 + 9 * L); // tied head: no output.weight
    expect(g.tensors.some((t) => t.name === 'output.weight')).toBe(false);
    const info = (name: string) => g.tensors.find((t) => t.name === name)!;
    const h = config.hidden_size;
    expect(info('token_embd.weight').dims).toEqual([h, config.vocab_size]);
    expect(info('blk.0.ffn_down.weight').dims).toEqual([config.intermediate_size, h]);
    expect(info('blk.0.attn_norm.weight').dims).toEqual([h]);
    expect(g.tensors.every((t) => t.type === GgmlType.F32)).toBe(true);

    // the checkpoint is fp16: F32 data is its exact widening
    expectSameValues(tensorData(g, 'token_embd.weight'), hfTensor('model.embed_tokens.weight'));
    expectSameValues(tensorData(g, 'blk.3.attn_v.weight'), hfTensor('model.layers.3.self_attn.v_proj.weight'));
    expectSameValues(tensorData(g, 'blk.7.ffn_gate.weight'), hfTensor('model.layers.7.mlp.gate_proj.weight'));
    expectSameValues(tensorData(g, 'output_norm.weight'), hfTensor('model.norm.weight'));
    // q and k: row 2j of a head is HF's row j, row 2j + 1 is HF's row j + d/2 (llama.cpp's interleaved RoPE pairs)
    const d = config.head_dim;
    for (const [proj, heads] of [
      ['q', config.num_attention_heads],
      ['k', config.num_key_value_heads],
    ] as const) {
      const ours = tensorData(g, `blk.2.attn_${proj}.weight`);
      const hf = hfTensor(`model.layers.2.self_attn.${proj}_proj.weight`);
      expect(ours).toHaveLength(hf.length);
      for (const [head, j] of [
        [0, 0],
        [heads - 1, 5],
        [1, d / 2 - 1],
      ]) {
        const row = (w: Float32Array, r: number) => Array.from(w.subarray((head * d + r) * h, (head * d + r + 1) * h));
        expect(row(ours, 2 * j)).toEqual(row(hf, j));
        expect(row(ours, 2 * j + 1)).toEqual(row(hf, j + d / 2));
      }
    }
  });

  test('F16: matrices in F16 (bit-exact for an fp16 checkpoint), norms in F32, half the bytes', () => {
    const f32 = parseGguf(path.join(tmp, 'demo-f32.gguf'));
    const out = path.join(tmp, 'demo-f16.gguf');
    writeGguf(demoDir, out, { weightType: 'f16' });
    const g = parseGguf(out);
    expectLayout(g);
    expect(g.meta.get('general.file_type')).toBe(1);
    for (const t of g.tensors) {
      expect(t.type, t.name).toBe(t.dims.length === 2 ? GgmlType.F16 : GgmlType.F32);
    }
    expectSameValues(tensorData(g, 'token_embd.weight'), tensorData(f32, 'token_embd.weight'));
    expectSameValues(tensorData(g, 'blk.5.attn_q.weight'), tensorData(f32, 'blk.5.attn_q.weight'));
    expect(g.bytes.length).toBeLessThan(0.52 * f32.bytes.length);
  });

  for (const [weightType, ggmlType, fileType, bytesPerValue] of [
    ['q8_0', GGML_TYPE_Q8_0, 7, 34 / 32],
    ['q4_0', GGML_TYPE_Q4_0, 2, 18 / 32],
  ] as const) {
    test(`${weightType}: every matrix in blocks within half a step of the F32 values, norms F32, file type ${fileType}`, () => {
      const f32 = parseGguf(path.join(tmp, 'demo-f32.gguf'));
      const out = path.join(tmp, `demo-${weightType}.gguf`);
      const summary = writeGguf(demoDir, out, { weightType });
      const g = parseGguf(out);
      expectLayout(g);
      expect(summary.weightType).toBe(weightType);
      expect(g.meta.get('general.file_type')).toBe(fileType);
      expect(g.tensors.map((t) => t.name)).toEqual(f32.tensors.map((t) => t.name));
      let matrixBytes = 0;
      let matrixValues = 0;
      let clamped = 0;
      for (const t of g.tensors) {
        const source = tensorData(f32, t.name);
        expect(t.dims, t.name).toEqual(f32.tensors.find((x) => x.name === t.name)?.dims);
        if (t.dims.length === 1) {
          expect(t.type, t.name).toBe(0);
          expectSameValues(tensorData(g, t.name), source);
          continue;
        }
        expect(t.type, t.name).toBe(ggmlType);
        const { bytes } = tensorBytesOf(g, t.name);
        matrixBytes += bytes.length;
        matrixValues += source.length;
        clamped += expectWithinHalfStep(ggmlType, source, bytes);
      }
      expect(matrixBytes).toBe(matrixValues * bytesPerValue);
      expect(summary.tensorBytes).toBe(
        matrixBytes + g.tensors.filter((t) => t.dims.length === 1).reduce((n, t) => n + 4 * t.dims[0], 0),
      );
      if (weightType === 'q4_0') expect(clamped).toBeGreaterThan(0); // the clamp is exercised by real weights
    });
  }
});

describe('Q8_0 / Q4_0 blocks (ggml layouts)', () => {
  test('Q4_0: value j in the low nibble and value j + 16 in the high nibble of byte j', () => {
    // first half -8 … 7, second half 7 … -8: m = -8 (the first of equal magnitudes), d = 1, nibble = x + 8
    const x = Float32Array.from({ length: 32 }, (_, i) => (i < 16 ? i - 8 : 23 - i));
    const block = quantizeQ4_0(x);
    expect(block).toHaveLength(18);
    expect(float16BitsToFloat32(block[0] | (block[1] << 8))).toBe(1);
    const expected = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    expect(Array.from(block.subarray(2))).toEqual(expected);
    expect(Array.from(dequantize(GGML_TYPE_Q4_0, block).values)).toEqual(Array.from(x));
  });

  test('Q4_0: the scale takes the sign of the largest magnitude; the opposite extreme clamps to 15', () => {
    const x = new Float32Array(32);
    x[3] = 4; // m = 4, d = -0.5: 4 → nibble 0; -4 would be 16, clamped to 15
    x[20] = -4;
    x[5] = 1.3; // 1.3 / -0.5 + 8.5 = 5.9 → 5
    const block = quantizeQ4_0(x);
    expect(float16BitsToFloat32(block[0] | (block[1] << 8))).toBe(-0.5);
    const q = dequantize(GGML_TYPE_Q4_0, block).quants;
    expect([q[3], q[20], q[5], q[0]]).toEqual([0, 15, 5, 8]);
  });

  test('Q8_0: d = max|x| / 127, values rounded half away from zero', () => {
    const x = new Float32Array(32);
    x[0] = -127; // d = 1
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 0.49;
    x[31] = 100.6;
    const block = quantizeQ8_0(x);
    expect(block).toHaveLength(34);
    expect(float16BitsToFloat32(block[0] | (block[1] << 8))).toBe(1);
    const q = dequantize(GGML_TYPE_Q8_0, block).quants;
    expect([q[0], q[1], q[2], q[3], q[31], q[4]]).toEqual([-127, 3, -3, 0, 101, 0]);
  });

  test('blocks follow one another; an all-zero block has scale 0; partial blocks are refused', () => {
    const x = Float32Array.from({ length: 96 }, (_, i) => (i >= 32 && i < 64 ? 0 : Math.sin(i) * (1 + (i >> 5))));
    for (const [type, quantize] of [
      [GGML_TYPE_Q8_0, quantizeQ8_0],
      [GGML_TYPE_Q4_0, quantizeQ4_0],
    ] as const) {
      const bytes = quantize(x);
      expect(bytes).toHaveLength(storedBytes(type, 96));
      const { scales, values } = dequantize(type, bytes);
      expect(Math.abs(scales[1])).toBe(0); // ggml writes -0 for Q4_0 (0 / -8)
      expect(Array.from(values.subarray(32, 64)).every((v) => v === 0)).toBe(true);
      expect(Math.abs(scales[2])).toBeGreaterThan(Math.abs(scales[0]));
      expectWithinHalfStep(type, x, bytes);
      expect(() => quantize(new Float32Array(40))).toThrow(/not whole blocks of 32/);
    }
  });
});

describe('writeGguf: llama2.c checkpoint (SentencePiece vocabulary with scores)', () => {
  test('stories260K.bin: tokenizer, and q/k left in llama2.c’s own interleaved layout', () => {
    const out = path.join(tmp, 'stories.gguf');
    const summary = writeGguf(path.join(storiesDir, 'stories260K.bin'), out);
    expect(summary.tokenizerModel).toBe('llama');
    const g = parseGguf(out);
    expectLayout(g);
    const m = g.meta;
    expect(m.get('llama.attention.head_count')).toBe(8);
    expect(m.get('llama.attention.head_count_kv')).toBe(4);
    expect(m.get('tokenizer.ggml.model')).toBe('llama');
    const tokens = m.get('tokenizer.ggml.tokens') as string[];
    const types = m.get('tokenizer.ggml.token_type') as number[];
    const scores = m.get('tokenizer.ggml.scores') as number[];
    expect(tokens).toHaveLength(512);
    expect(scores).toHaveLength(512);
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(types.slice(0, 3)).toEqual([2, 3, 3]);
    expect(types.slice(3, 259).every((t) => t === 6)).toBe(true); // byte fallback pieces
    expect(tokens.slice(259).some((t) => t.startsWith('\u2581'))).toBe(true); // SentencePiece's word marker
    expect(tokens.some((t) => t.includes(' '))).toBe(false);
    expect(m.get('tokenizer.ggml.bos_token_id')).toBe(1);
    expect(m.get('tokenizer.ggml.add_bos_token')).toBe(true);

    // version 0 layout: 7 int32 header fields, then embed [vocab][dim], rms_att [L][dim], wq [L][dim][dim], ...
    const bin = readFileSync(path.join(storiesDir, 'stories260K.bin'));
    const [dim, , layers, , , vocab] = Array.from({ length: 7 }, (_, i) => bin.readInt32LE(4 * i));
    const wqAt = 28 + 4 * (vocab * dim + layers * dim);
    const wq0 = new Float32Array(bin.buffer.slice(bin.byteOffset + wqAt, bin.byteOffset + wqAt + 4 * dim * dim));
    expectSameValues(tensorData(g, 'blk.0.attn_q.weight'), wq0);
    const embed = new Float32Array(bin.buffer.slice(bin.byteOffset + 28, bin.byteOffset + 28 + 4 * vocab * dim));
    expectSameValues(tensorData(g, 'token_embd.weight'), embed);
  });
});

describe('writeGguf: GQA, an untied head and llama3 RoPE scaling', () => {
  test('rope_freqs holds the factors that turn the base frequencies into the scaled ones', () => {
    const dir = path.join(tmp, 'llama3');
    mkdirSync(dir);
    for (const f of readdirSync(parityDir('llama3-rope-scaling'))) {
      copyFileSync(path.join(parityDir('llama3-rope-scaling'), f), path.join(dir, f));
    }
    // a byte-level BPE vocabulary smaller than the embedding: the rest become unused padding tokens
    writeFileSync(
      path.join(dir, 'tokenizer.json'),
      JSON.stringify({
        added_tokens: [],
        normalizer: null,
        post_processor: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] },
      }),
    );
    const out = path.join(tmp, 'llama3.gguf');
    writeGguf(dir, out);
    const g = parseGguf(out);
    expectLayout(g);
    const config = readJson<{ head_dim: number; num_key_value_heads: number; hidden_size: number }>(
      path.join(dir, 'config.json'),
    );
    const tokens = g.meta.get('tokenizer.ggml.tokens') as string[];
    expect(tokens.slice(0, 4)).toEqual(['a', 'b', 'ab', '[PAD3]']);
    expect((g.meta.get('tokenizer.ggml.token_type') as number[])[3]).toBe(5);
    expect(g.meta.get('tokenizer.ggml.merges')).toEqual(['a b']);
    expect(g.tensors.find((t) => t.name === 'output.weight')?.dims).toEqual([config.hidden_size, 512]);
    expect(g.tensors.find((t) => t.name === 'blk.1.attn_k.weight')?.dims).toEqual([
      config.hidden_size,
      config.num_key_value_heads * config.head_dim,
    ]);
    const factors = tensorData(g, 'rope_freqs.weight');
    const rope = {
      type: 'llama3' as const,
      theta: 500000,
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 64,
    };
    const base = ropeInverseFrequencies({ type: 'default', theta: 500000 }, config.head_dim);
    const scaled = ropeInverseFrequencies(rope, config.head_dim);
    expect(factors).toHaveLength(config.head_dim / 2);
    for (let i = 0; i < factors.length; i++) expect(base[i] / factors[i]).toBeCloseTo(scaled[i], 6);
    expect(factors[0]).toBe(1); // the highest frequency is left alone
    expect(factors[factors.length - 1]).toBeCloseTo(8, 5); // the lowest is divided by the factor
  });
});

describe('rotateHalfToInterleaved', () => {
  test('moves row j to 2j and row j + d/2 to 2j + 1 within each head', () => {
    const heads = 2;
    const d = 4;
    const cols = 3;
    const w = Float32Array.from({ length: heads * d * cols }, (_, i) => i);
    const out = rotateHalfToInterleaved(w, heads, d);
    const rowOf = (a: Float32Array, r: number) => a[r * cols] / cols;
    expect(Array.from({ length: heads * d }, (_, r) => rowOf(out, r))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(() => rotateHalfToInterleaved(new Float32Array(10), 2, 4)).toThrow(RangeError);
  });
});

describe('writeGguf: bad input', () => {
  const fail = (fn: () => unknown): Error => {
    try {
      fn();
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected an error');
  };

  test('arguments', () => {
    expect(() => writeGguf('', path.join(tmp, 'x.gguf'))).toThrow(TypeError);
    expect(() => writeGguf(demoDir, '')).toThrow(TypeError);
    expect(() => writeGguf(demoDir, path.join(tmp, 'x.gguf'), { weightType: 'q4' as never })).toThrow(/weightType/);
  });

  test('Q8_0 / Q4_0 refuse rows that are not whole blocks of 32, before writing', () => {
    // stories260K: hidden size 64, MLP width 172 (ffn_down rows of 172 values)
    for (const weightType of ['q8_0', 'q4_0'] as const) {
      const out = path.join(tmp, `stories-${weightType}.gguf`);
      const err = fail(() => writeGguf(path.join(storiesDir, 'stories260K.bin'), out, { weightType }));
      expect(err).toBeInstanceOf(ModelLoadError);
      expect(err.message).toMatch(
        new RegExp(`${weightType} stores rows in blocks of 32 values, but blk\\.0\\.ffn_down\\.weight has rows of 172`),
      );
      expect(existsSync(out)).toBe(false);
    }
  });

  test('missing or unsupported checkpoints are ModelLoadErrors naming the file', () => {
    const missing = fail(() => writeGguf(path.join(tmp, 'nope'), path.join(tmp, 'x.gguf')));
    expect(missing).toBeInstanceOf(ModelLoadError);
    expect(missing.message).toMatch(/no such file/);

    const noTokenizer = fail(() => writeGguf(parityDir('llama-gqa'), path.join(tmp, 'x.gguf')));
    expect(noTokenizer).toBeInstanceOf(ModelLoadError);
    expect(noTokenizer.message).toMatch(/tokenizer\.json not found/);

    const qwen = fail(() => writeGguf(parityDir('qwen2-qkv-bias'), path.join(tmp, 'x.gguf')));
    expect(qwen).toBeInstanceOf(ModelLoadError);
    expect(qwen.message).toMatch(/qwen2 is not supported/);

    const notModel = path.join(tmp, 'weights.txt');
    writeFileSync(notModel, 'hello');
    expect(fail(() => writeGguf(notModel, path.join(tmp, 'x.gguf'))).message).toMatch(/HF checkpoint folder/);
    expect(existsSync(path.join(tmp, 'x.gguf'))).toBe(false);
  });

  test('a bad tokenizer is refused before anything is written', () => {
    const dir = path.join(tmp, 'bad-tokenizer');
    mkdirSync(dir);
    for (const f of readdirSync(parityDir('llama-mha-tied'))) {
      copyFileSync(path.join(parityDir('llama-mha-tied'), f), path.join(dir, f));
    }
    const spm = { model: { type: 'Unigram', vocab: [] }, pre_tokenizer: { type: 'Metaspace' } };
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(spm));
    const out = path.join(tmp, 'bad.gguf');
    expect(fail(() => writeGguf(dir, out)).message).toMatch(/tokenizer model "Unigram" is not supported/);
    const badId = {
      pre_tokenizer: { type: 'ByteLevel', use_regex: true },
      model: { type: 'BPE', vocab: { a: 0, b: 100000 }, merges: [] },
    };
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(badId));
    expect(fail(() => writeGguf(dir, out)).message).toMatch(/"b" has id 100000 outside the vocabulary/);
    expect(existsSync(out)).toBe(false);
  });

  test('a llama2.c checkpoint without its tokenizer, and a truncated tokenizer', () => {
    const dir = path.join(tmp, 'lonely');
    mkdirSync(dir);
    copyFileSync(path.join(storiesDir, 'stories260K.bin'), path.join(dir, 'model.bin'));
    const out = path.join(tmp, 'lonely.gguf');
    expect(fail(() => writeGguf(path.join(dir, 'model.bin'), out)).message).toMatch(/no tokenizer next to/);
    const tok = readFileSync(path.join(storiesDir, 'tok512.bin'));
    writeFileSync(path.join(dir, 'tok512.bin'), tok.subarray(0, tok.length - 5));
    const err = fail(() => writeGguf(path.join(dir, 'model.bin'), out));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toMatch(/invalid piece length|truncated/);
    expect(existsSync(out)).toBe(false);
  });

  test('an output folder that does not exist leaves no partial file', () => {
    const out = path.join(tmp, 'no-such-dir', 'demo.gguf');
    const err = fail(() => writeGguf(path.join(storiesDir, 'stories260K.bin'), out));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toMatch(/cannot write the GGUF file/);
    expect(existsSync(path.dirname(out))).toBe(false);
  });
});
