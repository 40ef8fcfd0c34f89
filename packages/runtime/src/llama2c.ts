import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { type DelimiterLevel, type DelimiterSet, delimitersFromVocabulary } from '@semanticache/chunker';
import type { ModelConfig } from './config.js';
import { ModelLoadError } from './errors.js';
import { checkIds, type TextTokenizer } from './tokenizer.js';
import { concatRows, type LayerWeights, type ModelWeights } from './weights.js';

// The llama2.c format: checkpoints (`.bin`) and their tokenizer (`tokenizer.bin`).

const V1_MAGIC = 0x616b3432; // "ak42"
const V1_HEADER_BYTES = 256;

/**
 * Loads a llama2.c `.bin` checkpoint (legacy version 0 or version 1, fp32). q/k rows are permuted from llama2.c's
 * interleaved RoPE pairs to the HF "rotate half" layout, so one RoPE implementation serves both formats.
 */
export function loadLlama2cCheckpoint(file: string): { config: ModelConfig; weights: ModelWeights } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    throw new ModelLoadError('cannot read llama2.c checkpoint', { file, cause });
  }
  try {
    return readCheckpoint(file, fd);
  } finally {
    closeSync(fd);
  }
}

function readCheckpoint(file: string, fd: number): { config: ModelConfig; weights: ModelWeights } {
  const fileBytes = fstatSync(fd).size;
  const bytes = Buffer.alloc(Math.min(V1_HEADER_BYTES, fileBytes));
  readSync(fd, bytes, 0, bytes.length, 0);
  if (bytes.length < 28) throw new ModelLoadError(`file is ${bytes.length} bytes, too short for a header`, { file });
  const version = bytes.readUInt32LE(0) === V1_MAGIC ? bytes.readInt32LE(4) : 0;
  if (version !== 0 && version !== 1) {
    throw new ModelLoadError(`unsupported llama2.c checkpoint version ${version} (supported: 0, 1)`, { file });
  }
  if (version === 1 && fileBytes < V1_HEADER_BYTES) {
    throw new ModelLoadError(`file is ${fileBytes} bytes, too short for a version 1 header (${V1_HEADER_BYTES})`, {
      file,
    });
  }
  const headerAt = version === 1 ? 8 : 0;
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = Array.from({ length: 7 }, (_, i) =>
    bytes.readInt32LE(headerAt + 4 * i),
  );
  const vocab = Math.abs(rawVocab);
  const shared = version === 1 ? bytes.readUInt8(36) === 1 : rawVocab > 0;
  for (const [name, v] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen })) {
    if (!(v > 0)) throw new ModelLoadError(`header field ${name} = ${v} is not positive`, { file });
  }
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw new ModelLoadError(`inconsistent header: dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads}`, { file });
  }
  const headSize = dim / nHeads;
  const kvDim = nKvHeads * headSize;
  const L = nLayers;
  const sizes = {
    embed: vocab * dim,
    rmsAtt: L * dim,
    wq: L * dim * dim,
    wk: L * kvDim * dim,
    wv: L * kvDim * dim,
    wo: L * dim * dim,
    rmsFfn: L * dim,
    w1: L * hiddenDim * dim,
    w2: L * dim * hiddenDim,
    w3: L * hiddenDim * dim,
    rmsFinal: dim,
    freqCis: version === 0 ? seqLen * headSize : 0, // legacy real + imag tables, unused
    wcls: shared ? 0 : vocab * dim,
  };
  const dataStart = version === 1 ? V1_HEADER_BYTES : 28;
  const floats = Object.values(sizes).reduce((a, b) => a + b, 0);
  // The size must be exact: a short file is truncated, and bytes past the last tensor mean the header's shapes are
  // not the ones the weights were written with (reading them would give garbage).
  const expectedBytes = dataStart + 4 * floats;
  if (fileBytes !== expectedBytes) {
    const what =
      fileBytes < expectedBytes
        ? `${expectedBytes - fileBytes} bytes short (truncated, or a header that disagrees with the weights)`
        : `${fileBytes - expectedBytes} extra bytes after the last tensor (a header that disagrees with the weights)`;
    throw new ModelLoadError(
      `file is ${fileBytes} bytes but the header (dim ${dim}, hidden_dim ${hiddenDim}, layers ${L}, heads ${nHeads}, kv_heads ${nKvHeads}, vocab ${vocab}, seq_len ${seqLen}, shared classifier ${shared}) implies ${expectedBytes}: ${what}`,
      { file },
    );
  }
  // Each tensor is read into its own aligned array (version 0 data starts at offset 28; files may exceed 2 GiB).
  let at = dataStart;
  const take = (n: number) => {
    const out = new Float32Array(n);
    const view = new Uint8Array(out.buffer);
    for (let done = 0; done < view.length; ) {
      const got = readSync(fd, view, done, Math.min(view.length - done, 1 << 30), at + done);
      if (got <= 0) throw new ModelLoadError('unexpected end of file', { file });
      done += got;
    }
    at += 4 * n;
    return out;
  };
  const order: (keyof typeof sizes)[] =
    version === 1
      ? ['rmsAtt', 'rmsFfn', 'rmsFinal', 'embed', 'wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3', 'wcls']
      : ['embed', 'rmsAtt', 'wq', 'wk', 'wv', 'wo', 'rmsFfn', 'w1', 'w2', 'w3', 'rmsFinal', 'freqCis', 'wcls'];
  const t = {} as Record<keyof typeof sizes, Float32Array>;
  for (const key of order) {
    if (key === 'freqCis')
      at += 4 * sizes.freqCis; // legacy RoPE tables: RoPE is computed in the graph
    else t[key] = take(sizes[key]);
  }
  for (const [name, arr] of Object.entries(t)) {
    for (let i = 0; i < arr.length; i++) {
      if (!Number.isFinite(arr[i]))
        throw new ModelLoadError(`non-finite value at element ${i}`, { file, tensor: name });
    }
  }

  const layers: LayerWeights[] = [];
  const per = (a: Float32Array, l: number, n: number) => a.slice(l * n, (l + 1) * n);
  for (let l = 0; l < L; l++) {
    layers.push({
      inputNorm: per(t.rmsAtt, l, dim),
      qkv: concatRows([
        toRotateHalf(per(t.wq, l, dim * dim), nHeads, headSize, dim),
        toRotateHalf(per(t.wk, l, kvDim * dim), nKvHeads, headSize, dim),
        per(t.wv, l, kvDim * dim),
      ]),
      qkvBias: undefined,
      o: per(t.wo, l, dim * dim),
      oBias: undefined,
      postNorm: per(t.rmsFfn, l, dim),
      gateUp: concatRows([per(t.w1, l, hiddenDim * dim), per(t.w3, l, hiddenDim * dim)]),
      gateUpBias: undefined,
      down: per(t.w2, l, dim * hiddenDim),
      downBias: undefined,
    });
  }
  const embed = t.embed;
  const config: ModelConfig = {
    architecture: 'llama2c',
    vocabSize: vocab,
    hiddenSize: dim,
    intermediateSize: hiddenDim,
    numLayers: L,
    numHeads: nHeads,
    numKvHeads: nKvHeads,
    headDim: headSize,
    rmsNormEps: 1e-5,
    maxContext: seqLen,
    tieWordEmbeddings: shared,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    rope: { type: 'default', theta: 10000 },
    bosTokenId: 1,
    // run.c ends a story when BOS is sampled: stories are delimited by BOS in training.
    eosTokenIds: [1],
  };
  return {
    config,
    weights: { embed, layers, finalNorm: t.rmsFinal, lmHead: shared ? embed : t.wcls },
  };
}

/** Rows of each head reordered from interleaved pairs (2j, 2j+1) to halves (j, j + d/2). */
function toRotateHalf(w: Float32Array, heads: number, headSize: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headSize / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      const base = h * headSize;
      out.set(w.subarray((base + 2 * j) * cols, (base + 2 * j + 1) * cols), (base + j) * cols);
      out.set(w.subarray((base + 2 * j + 1) * cols, (base + 2 * j + 2) * cols), (base + half + j) * cols);
    }
  }
  return out;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * llama2.c `tokenizer.bin` (SentencePiece-derived BPE with scores, byte fallback). Encoding follows run.c's
 * `encode()`: dummy-prefix space, code points (or their bytes + 3), then repeatedly merge the best-scoring pair.
 */
export class Llama2cTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosTokenId = 1;
  readonly eosTokenId = 2;
  private pieces: Uint8Array[];
  private scores: Float32Array;
  private lookup = new Map<string, number>();
  private pieceText: string[];

  constructor(file: string, vocabSize: number) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (cause) {
      throw new ModelLoadError('cannot read llama2.c tokenizer', { file, cause });
    }
    this.vocabSize = vocabSize;
    this.pieces = [];
    this.pieceText = [];
    this.scores = new Float32Array(vocabSize);
    let at = 4;
    const utf8 = new TextDecoder('utf-8');
    for (let id = 0; id < vocabSize; id++) {
      if (at + 8 > bytes.length) throw new ModelLoadError(`truncated at token ${id} of ${vocabSize}`, { file });
      this.scores[id] = bytes.readFloatLE(at);
      const len = bytes.readInt32LE(at + 4);
      at += 8;
      if (len < 0 || at + len > bytes.length)
        throw new ModelLoadError(`invalid piece length ${len} at token ${id}`, { file });
      const piece = new Uint8Array(bytes.subarray(at, at + len));
      at += len;
      const text = utf8.decode(piece);
      const byte = BYTE_PIECE.exec(text);
      this.pieces.push(byte ? Uint8Array.of(Number.parseInt(byte[1], 16)) : piece);
      this.pieceText.push(text);
      if (!this.lookup.has(text)) this.lookup.set(text, id);
    }
    if (at !== bytes.length)
      throw new ModelLoadError(`${bytes.length - at} trailing bytes after ${vocabSize} tokens`, { file });
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError('text must be a string');
    const tokens: number[] = [];
    if (options.addSpecialTokens ?? true) tokens.push(this.bosTokenId);
    if (text.length === 0) return tokens;
    const start = tokens.length;
    const space = this.lookup.get(' ');
    if (space !== undefined) tokens.push(space);
    for (const ch of text) {
      const id = this.lookup.get(ch);
      if (id !== undefined) tokens.push(id);
      else for (const b of new TextEncoder().encode(ch)) tokens.push(b + 3);
    }
    const parts = tokens.slice(start).map((id) => this.pieceText[id]);
    const ids = tokens.slice(start);
    for (;;) {
      let bestScore = Number.NEGATIVE_INFINITY;
      let bestId = -1;
      let bestIdx = -1;
      for (let i = 0; i < ids.length - 1; i++) {
        const merged = this.lookup.get(parts[i] + parts[i + 1]);
        if (merged !== undefined && this.scores[merged] > bestScore) {
          bestScore = this.scores[merged];
          bestId = merged;
          bestIdx = i;
        }
      }
      if (bestIdx < 0) break;
      ids.splice(bestIdx, 2, bestId);
      parts.splice(bestIdx, 2, this.pieceText[bestId]);
    }
    return [...tokens.slice(0, start), ...ids];
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = checkIds(ids, this.vocabSize);
    const skip = options.skipSpecialTokens ?? true;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < list.length; i++) {
      const id = list[i];
      if (skip && (id === this.bosTokenId || id === this.eosTokenId)) continue;
      let piece = this.pieces[id];
      // run.c: a piece that follows BOS loses its leading space (SentencePiece's dummy prefix).
      if (i > 0 && list[i - 1] === this.bosTokenId && piece[0] === 0x20) piece = piece.subarray(1);
      chunks.push(piece);
    }
    return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
  }

  delimiters(level: DelimiterLevel): DelimiterSet {
    const utf8 = new TextDecoder('utf-8');
    return delimitersFromVocabulary(
      this.pieces.map((p) => utf8.decode(p)),
      { level, specialIds: [0, this.bosTokenId, this.eosTokenId] },
    );
  }
}
