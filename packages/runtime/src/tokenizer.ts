import { readFileSync } from 'node:fs';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { type DelimiterLevel, type DelimiterSet, delimitersFromTokenizerJson } from '@semanticache/chunker';
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

export function checkIds(ids: ArrayLike<number>, vocabSize: number): number[] {
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
