import { isIntegerIn } from '@semanticache/internal';
import { compileTokenDecoder, readTokenizerVocabulary, type TokenizerJsonInput } from './decode.js';

/** Per-id bit flags in `DelimiterSet.flags`. */
export const TokenFlag = {
  /** A chunk may end after this token: its text ends in a delimiter of the set's level. */
  DELIMITER: 1,
  /** Only closing brackets/quotes (and spaces): it stays with a delimiter right before it (`.` then `"`). */
  TRAILER: 2,
  /** Ends in a weaker punctuation mark than the level's (a clause mark at sentence level): a preferred split point. */
  WEAK: 4,
  /** Text ends with whitespace: splitting after it falls between words. */
  SPACE_AFTER: 8,
  /** Text starts with whitespace: splitting before it falls between words. */
  SPACE_BEFORE: 16,
  /**
   * Text ends in "." or ":" with nothing after it: followed directly by a token without leading whitespace (3.5,
   * index.ts, 12:30) the mark is inside a word, so no chunk ends there.
   */
  INFIX: 32,
} as const;

export type DelimiterLevel = 'sentence' | 'clause';

/** A custom delimiter set: every code point of `characters` ends a chunk; `trailing` ones are skipped at a token's end. */
export interface CustomDelimiters {
  readonly characters: string;
  /** Closing marks that may follow a delimiter inside one token or as the next tokens. Default: CLOSING_MARKS. */
  readonly trailing?: string;
}

export interface DelimiterSet {
  readonly level: DelimiterLevel | 'custom';
  readonly vocabSize: number;
  /** 1 where a chunk may end after the id (`flags & TokenFlag.DELIMITER`). */
  readonly isDelimiter: Uint8Array;
  /** TokenFlag bits per id; chunk() reads only this table. */
  readonly flags: Uint8Array;
}

export interface DelimiterOptions {
  /** Default 'sentence'. */
  readonly level?: DelimiterLevel | CustomDelimiters;
}

export interface VocabularyDelimiterOptions extends DelimiterOptions {
  /** Number of ids; required when the vocabulary is a function. */
  readonly vocabSize?: number;
  /** Ids that are never delimiters (special tokens such as BOS/EOS). */
  readonly specialIds?: Iterable<number>;
}

/** Line breaks: each ends a sentence (paragraphs, list items and code lines are units of their own). */
export const LINE_BREAKS = '\n\r\u000b\u000c\u0085\u2028\u2029';
/** Sentence-final marks (Latin, CJK full- and half-width). */
export const SENTENCE_MARKS = '.!?…‼⁇⁈⁉。！？｡';
/** Clause marks (Latin and CJK). */
export const CLAUSE_MARKS = ',;:，、；：';
/** Closing brackets and quotes. ASCII " and ' are closing only when a non-space character precedes them in the token. */
export const CLOSING_MARKS = ')]}"\'”’」』》〉）］｝';

// Character classes, per UTF-16 code unit (every built-in mark is in the Basic Multilingual Plane).
const TERMINAL = 1;
const TRAILING = 2;
const WEAK_MARK = 4;
const SPACE = 8;
const LINE_BREAK = 16;
const QUOTE = 32; // ASCII " and ': closing only after a non-space character

const BMP = 0x10000;

function setClass(table: Uint8Array, chars: string, bit: number, name: string) {
  for (const ch of chars) {
    const code = ch.codePointAt(0)!;
    if (code >= BMP) throw new RangeError(`${name} has ${ch}, outside the Basic Multilingual Plane (unsupported)`);
    table[code] |= bit;
  }
}

/** Whitespace per code unit, from the JS definition of \s; line breaks flagged apart. */
const BASE_CLASSES: Uint8Array = (() => {
  const table = new Uint8Array(BMP);
  const space = /\s/;
  for (let c = 0; c < BMP; c++) if (space.test(String.fromCharCode(c))) table[c] = SPACE;
  setClass(table, LINE_BREAKS, LINE_BREAK | SPACE, 'LINE_BREAKS');
  table[0x22] |= QUOTE;
  table[0x27] |= QUOTE;
  return table;
})();

function charClasses(level: DelimiterLevel | CustomDelimiters): Uint8Array {
  const table = BASE_CLASSES.slice();
  if (level === 'sentence' || level === 'clause') {
    setClass(table, SENTENCE_MARKS + LINE_BREAKS, TERMINAL, 'SENTENCE_MARKS');
    setClass(table, CLOSING_MARKS, TRAILING, 'CLOSING_MARKS');
    if (level === 'clause') setClass(table, CLAUSE_MARKS + CLOSING_MARKS, TERMINAL, 'CLAUSE_MARKS');
    else setClass(table, CLAUSE_MARKS + CLOSING_MARKS, WEAK_MARK, 'CLAUSE_MARKS');
    return table;
  }
  if (level === null || typeof level !== 'object' || typeof level.characters !== 'string') {
    throw new TypeError(`options.level must be 'sentence', 'clause' or { characters: string }, got ${String(level)}`);
  }
  if (level.trailing !== undefined && typeof level.trailing !== 'string') {
    throw new TypeError('options.level.trailing must be a string');
  }
  if (level.characters.length === 0) throw new RangeError('options.level.characters must name at least one character');
  setClass(table, level.characters, TERMINAL, 'options.level.characters');
  for (const ch of level.characters) {
    const code = ch.charCodeAt(0);
    if ((table[code] & SPACE && !(table[code] & LINE_BREAK)) || code === 0xfffd) {
      throw new RangeError(
        `options.level.characters may not contain whitespace or U+FFFD (got U+${code.toString(16)})`,
      );
    }
  }
  setClass(table, level.trailing ?? CLOSING_MARKS, TRAILING, 'options.level.trailing');
  setClass(table, SENTENCE_MARKS + LINE_BREAKS + CLAUSE_MARKS + CLOSING_MARKS, WEAK_MARK, 'marks');
  for (let c = 0; c < BMP; c++) {
    if (table[c] & TERMINAL) table[c] &= ~(TRAILING | WEAK_MARK);
  }
  return table;
}

/**
 * Whether `text` ends, after trailing spaces and trailing marks, in a character with class `mark`. An ASCII quote
 * preceded by whitespace (or nothing) opens rather than closes, so it is neither a mark nor skipped.
 */
function endsWithMark(text: string, classes: Uint8Array, mark: number): boolean {
  let p = text.length;
  while (p > 0) {
    const c = classes[text.charCodeAt(p - 1)];
    if (c & SPACE && !(c & LINE_BREAK)) {
      p--;
      continue;
    }
    const closes = !(c & QUOTE) || (p >= 2 && !(classes[text.charCodeAt(p - 2)] & SPACE));
    if (c & mark && closes) return true;
    if (c & TRAILING && closes && p >= 2) {
      p--;
      continue;
    }
    return false;
  }
  return false;
}

function isTrailer(text: string, classes: Uint8Array): boolean {
  let marks = 0;
  for (let i = 0; i < text.length; i++) {
    const c = classes[text.charCodeAt(i)];
    if (c & SPACE && !(c & LINE_BREAK)) continue;
    if (!(c & TRAILING)) return false;
    if (c & QUOTE && i > 0 && classes[text.charCodeAt(i - 1)] & SPACE) return false;
    marks++;
  }
  return marks > 0;
}

const INFIX_MARKS = new Set([0x2e, 0x3a]);

/** TokenFlag bits of one decoded token text. */
function classify(text: string, classes: Uint8Array): number {
  if (text.length === 0) return 0;
  let flags = 0;
  if (endsWithMark(text, classes, TERMINAL)) flags |= TokenFlag.DELIMITER;
  else if (endsWithMark(text, classes, WEAK_MARK)) flags |= TokenFlag.WEAK;
  if (isTrailer(text, classes)) flags |= TokenFlag.TRAILER;
  const last = text.charCodeAt(text.length - 1);
  if (classes[last] & SPACE) flags |= TokenFlag.SPACE_AFTER;
  if (classes[text.charCodeAt(0)] & SPACE) flags |= TokenFlag.SPACE_BEFORE;
  if (INFIX_MARKS.has(last)) flags |= TokenFlag.INFIX;
  return flags;
}

function buildSet(
  vocabSize: number,
  textOf: (id: number) => string,
  isSpecial: (id: number) => boolean,
  level: DelimiterLevel | CustomDelimiters,
): DelimiterSet {
  const classes = charClasses(level);
  const flags = new Uint8Array(vocabSize);
  const isDelimiter = new Uint8Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    if (isSpecial(id)) continue;
    const text = textOf(id);
    if (typeof text !== 'string') throw new TypeError(`vocabulary entry ${id} is ${typeof text}, not a string`);
    flags[id] = classify(text, classes);
    isDelimiter[id] = flags[id] & TokenFlag.DELIMITER;
  }
  return { level: typeof level === 'string' ? level : 'custom', vocabSize, isDelimiter, flags };
}

function checkOptions(options: unknown) {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
}

/** Delimiter set of a HF tokenizer.json: decodes every id once (never looks delimiter strings up as tokens). */
export function delimitersFromTokenizerJson(
  tokenizerJson: TokenizerJsonInput,
  options: DelimiterOptions = {},
): DelimiterSet {
  checkOptions(options);
  const { tokens, special, decoder } = readTokenizerVocabulary(tokenizerJson);
  const decode = compileTokenDecoder(decoder);
  return buildSet(
    tokens.length,
    (id) => decode(tokens[id]),
    (id) => special[id] === 1,
    options.level ?? 'sentence',
  );
}

/** Delimiter set from decoded token texts: an array (index = id) or a `decode(id)` function with `vocabSize`. */
export function delimitersFromVocabulary(
  vocabulary: readonly string[] | ((id: number) => string),
  options: VocabularyDelimiterOptions = {},
): DelimiterSet {
  checkOptions(options);
  let vocabSize: number;
  let textOf: (id: number) => string;
  if (typeof vocabulary === 'function') {
    vocabSize = options.vocabSize ?? Number.NaN;
    if (!isIntegerIn(vocabSize, 1, 1 << 24)) {
      throw new RangeError(
        `options.vocabSize must be an integer in 1..2^24 when vocabulary is a function, got ${vocabSize}`,
      );
    }
    textOf = vocabulary;
  } else if (Array.isArray(vocabulary)) {
    if (options.vocabSize !== undefined && options.vocabSize !== vocabulary.length) {
      throw new RangeError(
        `options.vocabSize ${options.vocabSize} differs from vocabulary.length ${vocabulary.length}`,
      );
    }
    vocabSize = vocabulary.length;
    if (vocabSize === 0) throw new RangeError('vocabulary is empty');
    textOf = (id) => vocabulary[id];
  } else {
    throw new TypeError('vocabulary must be an array of decoded token texts or a decode(id) function');
  }
  const special = new Uint8Array(vocabSize);
  for (const id of options.specialIds ?? []) {
    if (!isIntegerIn(id, 0, vocabSize - 1)) {
      throw new RangeError(`options.specialIds has ${id}, outside 0..${vocabSize - 1}`);
    }
    special[id] = 1;
  }
  return buildSet(vocabSize, textOf, (id) => special[id] === 1, options.level ?? 'sentence');
}
