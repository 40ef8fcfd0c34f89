import { readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import {
  type DelimiterLevel,
  type DelimiterSet,
  delimitersFromTokenizerJson,
  delimitersFromVocabulary,
} from '@semanticache/chunker';
import { ModelLoadError } from './errors.js';

/** What the runtime needs from a tokenizer; both checkpoint formats provide one. */
export interface TextTokenizer {
  readonly vocabSize: number;
  /** Token ids of `text`; `addSpecialTokens` (default true) adds what the tokenizer's template adds (e.g. BOS). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** Ids after which a semantic chunk may end (sentence or clause punctuation, line breaks). */
  delimiters(level: DelimiterLevel): DelimiterSet;
}

function checkIds(ids: ArrayLike<number>, vocabSize: number): number[] {
  const out = Array.from(ids);
  for (const id of out) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`ids: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
  return out;
}

/** HF `tokenizer.json` through @huggingface/tokenizers. */
export class HfTextTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  private tok: HfTokenizer;
  private delimiterSets = new Map<DelimiterLevel, DelimiterSet>();

  constructor(
    private tokenizerJson: object,
    tokenizerConfig: object = {},
  ) {
    this.tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
    let max = -1;
    for (const id of this.tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
  }

  static fromFiles(tokenizerPath: string, configPath?: string): HfTextTokenizer {
    const read = (p: string) => {
      try {
        return JSON.parse(readFileSync(p, 'utf8'));
      } catch (cause) {
        throw new ModelLoadError('cannot read tokenizer JSON', { file: p, cause });
      }
    };
    try {
      return new HfTextTokenizer(read(tokenizerPath), configPath ? read(configPath) : {});
    } catch (cause) {
      if (cause instanceof ModelLoadError) throw cause;
      throw new ModelLoadError(`tokenizer could not be built: ${(cause as Error).message}`, {
        file: tokenizerPath,
        cause,
      });
    }
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError('text must be a string');
    return this.tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = checkIds(ids, this.vocabSize);
    // the library refuses an empty list; no ids decode to no text (as llama2.c's tokenizer does)
    if (list.length === 0) return '';
    return this.tok.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? true });
  }

  delimiters(level: DelimiterLevel): DelimiterSet {
    let set = this.delimiterSets.get(level);
    if (!set) {
      set = delimitersFromTokenizerJson(this.tokenizerJson as never, { level });
      this.delimiterSets.set(level, set);
    }
    return set;
  }
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

/**
 * Incremental detokenizer: feeds ids one at a time and returns only text that is final. Decoding a window of ids
 * that starts a few tokens back keeps word-initial spaces right, and text ending in U+FFFD (an incomplete UTF-8
 * sequence split across tokens) is held back until the rest arrives.
 */
export class StreamDecoder {
  private ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(
    private tokenizer: TextTokenizer,
    context: ArrayLike<number> = [],
  ) {
    this.ids = Array.from(context).slice(-4);
    this.readOffset = this.ids.length;
  }

  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      const text = full.slice(prefix.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return text;
    }
    return '';
  }

  /** Whatever is still held back (e.g. a trailing incomplete character), decoded as is. */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }
}
