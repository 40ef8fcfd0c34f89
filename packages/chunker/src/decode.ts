import { isIntegerIn } from '@semanticache/internal';
import { TokenizerFormatError } from './errors.js';

/** A tokenizer.json as text, as its UTF-8 bytes, or already parsed. */
export type TokenizerJsonInput = string | Uint8Array | Record<string, unknown>;

export interface DecodeVocabularyOptions {
  /**
   * false (default): the text an id contributes in the middle of a sequence, so the pieces of a sequence concatenate
   * to its decoded text (Metaspace keeps the space of "▁word", WordPiece prefixes a space unless the piece starts with
   * "##"). true: exactly what `decode([id])` gives, where first-token rules strip a leading space.
   */
  readonly standalone?: boolean;
}

/** The parsed vocabulary: token string per id, which ids are special added tokens, and the decoder description. */
export interface TokenizerVocabulary {
  /** Raw token string per id ('' where the id is unused). */
  readonly tokens: string[];
  /** 1 where the id is an added token with `special: true`. */
  readonly special: Uint8Array;
  readonly decoder: unknown;
}

const lossyUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8 = new TextEncoder();

/** GPT-2 `bytes_to_unicode` inverse: code point of the printable stand-in → byte, -1 where none. */
const BYTE_OF_CHAR: Int16Array = (() => {
  const table = new Int16Array(324).fill(-1);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[printable ? b : 256 + shifted++] = b;
  }
  return table;
})();

const BYTE_FALLBACK_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

function parseTokenizerJson(input: TokenizerJsonInput): Record<string, unknown> {
  let value: unknown = input;
  if (input instanceof Uint8Array) value = lossyUtf8.decode(input);
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (error) {
      throw new TokenizerFormatError(`tokenizerJson is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError('tokenizerJson must be a JSON object (or its text or bytes)');
  }
  return value as Record<string, unknown>;
}

/** Far above any real vocabulary (262 144 is the largest common one); bounds the per-id tables. */
const MAX_VOCAB_SIZE = 1 << 24;

function badId(id: unknown, where: string): TokenizerFormatError {
  return new TokenizerFormatError(`${where} has id ${String(id)}, which is not an integer in 0..${MAX_VOCAB_SIZE - 1}`);
}

/** Reads the model vocabulary and the added tokens of a tokenizer.json (BPE, WordPiece, WordLevel and Unigram models). */
export function readTokenizerVocabulary(tokenizerJson: TokenizerJsonInput): TokenizerVocabulary {
  const json = parseTokenizerJson(tokenizerJson);
  const model = json.model as Record<string, unknown> | undefined;
  if (model === null || typeof model !== 'object')
    throw new TokenizerFormatError('tokenizerJson has no "model" object');
  const vocab = model.vocab;
  // Holes (unused ids) are filled with '' below.
  const tokens: string[] = [];
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...], the index is the id.
    for (let id = 0; id < vocab.length; id++) {
      const entry = vocab[id];
      const piece = Array.isArray(entry) ? entry[0] : undefined;
      if (typeof piece !== 'string') throw new TokenizerFormatError(`model.vocab[${id}] is not a [piece, score] pair`);
      tokens.push(piece);
    }
  } else if (vocab !== null && typeof vocab === 'object') {
    const byPiece = vocab as Record<string, unknown>;
    for (const piece in byPiece) {
      const id = byPiece[piece];
      if (!isIntegerIn(id, 0, MAX_VOCAB_SIZE - 1)) throw badId(id, `model.vocab[${JSON.stringify(piece)}]`);
      tokens[id] = piece;
    }
  } else {
    throw new TokenizerFormatError(`tokenizerJson.model has no "vocab" (model type ${String(model.type)})`);
  }
  const specialIds: number[] = [];
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new TokenizerFormatError('tokenizerJson.added_tokens is not an array');
  for (const [index, token] of added.entries()) {
    const entry = token as { id?: unknown; content?: unknown; special?: unknown } | null;
    if (entry === null || typeof entry.content !== 'string') {
      throw new TokenizerFormatError(`added_tokens[${index}] has no string "content"`);
    }
    if (!isIntegerIn(entry.id, 0, MAX_VOCAB_SIZE - 1)) throw badId(entry.id, `added_tokens[${index}]`);
    tokens[entry.id] = entry.content;
    if (entry.special === true) specialIds.push(entry.id);
  }
  if (tokens.length === 0) throw new TokenizerFormatError('tokenizerJson has an empty vocabulary');
  for (let id = 0; id < tokens.length; id++) if (tokens[id] === undefined) tokens[id] = '';
  const special = new Uint8Array(tokens.length);
  for (const id of specialIds) special[id] = 1;
  return { tokens, special, decoder: json.decoder ?? null };
}

/** Where the token sits: first and last decide the first/last-token rules of Metaspace, WordPiece, BPEDecoder and Strip. */
interface Position {
  readonly first: boolean;
  readonly last: boolean;
}

type Step = (token: string, position: Position, fused: boolean) => string;

const SUPPORTED_DECODERS = 'ByteLevel, Metaspace, ByteFallback, Replace, Fuse, Strip, WordPiece, BPEDecoder, Sequence';

function stringField(decoder: Record<string, unknown>, key: string, fallback: string): string {
  const value = decoder[key] ?? fallback;
  if (typeof value !== 'string')
    throw new TokenizerFormatError(`decoder ${String(decoder.type)}.${key} is not a string`);
  return value;
}

function compileDecoder(decoder: unknown, path: string): Step[] {
  if (decoder === null) return [];
  if (typeof decoder !== 'object') throw new TokenizerFormatError(`${path} is not an object`);
  const d = decoder as Record<string, unknown>;
  switch (d.type) {
    case 'Sequence': {
      if (!Array.isArray(d.decoders)) throw new TokenizerFormatError(`${path}.decoders is not an array`);
      return d.decoders.flatMap((inner, i) => compileDecoder(inner, `${path}.decoders[${i}]`));
    }
    case 'ByteLevel':
      return [decodeByteLevel];
    case 'ByteFallback':
      return [decodeByteFallback];
    case 'Fuse':
      return [(token) => token];
    case 'Metaspace': {
      const replacement = stringField(d, 'replacement', '▁');
      // Old files say add_prefix_space; new ones prepend_scheme ('always' | 'first' | 'never').
      const stripsFirst = d.prepend_scheme !== undefined ? d.prepend_scheme !== 'never' : d.add_prefix_space !== false;
      return [
        (token, position) => {
          const text = token.split(replacement).join(' ');
          return position.first && stripsFirst && text.startsWith(' ') ? text.slice(1) : text;
        },
      ];
    }
    case 'Replace': {
      const content = stringField(d, 'content', '');
      const pattern = d.pattern as { String?: unknown; Regex?: unknown } | undefined;
      if (typeof pattern?.String === 'string') {
        const search = pattern.String;
        return [(token) => (search === '' ? token : token.split(search).join(content))];
      }
      if (typeof pattern?.Regex === 'string') {
        let regex: RegExp;
        try {
          regex = new RegExp(pattern.Regex, 'gu');
        } catch (error) {
          throw new TokenizerFormatError(`${path}.pattern.Regex is not a usable regex: ${(error as Error).message}`);
        }
        return [(token) => token.replace(regex, content)];
      }
      throw new TokenizerFormatError(`${path}.pattern has neither a String nor a Regex`);
    }
    case 'Strip': {
      const content = stringField(d, 'content', ' ');
      const start = Number(d.start ?? 0);
      const stop = Number(d.stop ?? 0);
      // Before Fuse, Strip works on every token; after it, on the ends of the whole text only.
      return [
        (token, position, fused) => {
          let begin = 0;
          let end = token.length;
          if (!fused || position.first)
            while (begin < start && token.startsWith(content, begin)) begin += content.length;
          if (!fused || position.last) {
            for (let n = 0; n < stop && end - content.length >= begin && token.endsWith(content, end); n++) {
              end -= content.length;
            }
          }
          return token.slice(begin, end);
        },
      ];
    }
    case 'WordPiece': {
      const prefix = stringField(d, 'prefix', '##');
      const cleanup = d.cleanup !== false;
      return [
        (token, position) => {
          let text = token;
          if (!position.first) text = text.startsWith(prefix) ? text.slice(prefix.length) : ' ' + text;
          return cleanup ? cleanupWordPiece(text) : text;
        },
      ];
    }
    case 'BPEDecoder': {
      const suffix = stringField(d, 'suffix', '</w>');
      return [(token, position) => token.split(suffix).join(position.last ? '' : ' ')];
    }
    default:
      throw new TokenizerFormatError(
        `${path} has unsupported type ${JSON.stringify(d.type)} (supported: ${SUPPORTED_DECODERS}); ` +
          'decode the vocabulary yourself and use delimitersFromVocabulary',
      );
  }
}

function decodeByteLevel(token: string): string {
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    const byte = code < BYTE_OF_CHAR.length ? BYTE_OF_CHAR[code] : -1;
    // Like HF: a token with any character outside the byte alphabet (an added token) is kept as its own UTF-8.
    if (byte < 0) return lossyUtf8.decode(utf8.encode(token));
    bytes[i] = byte;
  }
  return lossyUtf8.decode(bytes);
}

function decodeByteFallback(token: string): string {
  const match = BYTE_FALLBACK_TOKEN.exec(token);
  if (match === null) return token;
  const byte = Number.parseInt(match[1], 16);
  // A lone byte is valid UTF-8 only below 0x80; a lead or continuation byte alone becomes U+FFFD, as in HF.
  return byte < 0x80 ? String.fromCharCode(byte) : '\uFFFD';
}

const WORDPIECE_CLEANUP: readonly [string, string][] = [
  [' .', '.'],
  [' ?', '?'],
  [' !', '!'],
  [' ,', ','],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [' do not', " don't"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];

function cleanupWordPiece(text: string): string {
  let out = text;
  for (const [from, to] of WORDPIECE_CLEANUP) out = out.split(from).join(to);
  return out;
}

/** Compiles the decoder of a tokenizer.json into a function from one raw token to its text. */
export function compileTokenDecoder(
  decoder: unknown,
  options: DecodeVocabularyOptions = {},
): (token: string) => string {
  const steps = compileDecoder(decoder, 'decoder');
  const position: Position = options.standalone ? { first: true, last: true } : { first: false, last: false };
  const fuseAt = findFuse(decoder);
  return (token) => {
    let text = token;
    for (let i = 0; i < steps.length; i++) text = steps[i](text, position, i > fuseAt);
    return text;
  };
}

/** Index (in the flattened step list) of the first step that joins all tokens into one: Fuse, ByteLevel; -∞ → never. */
function findFuse(decoder: unknown): number {
  const flat: string[] = [];
  const walk = (d: unknown) => {
    if (d === null || typeof d !== 'object') return;
    const { type, decoders } = d as { type?: unknown; decoders?: unknown };
    if (type === 'Sequence' && Array.isArray(decoders)) decoders.forEach(walk);
    else flat.push(String(type));
  };
  walk(decoder);
  const index = flat.findIndex((type) => type === 'Fuse' || type === 'ByteLevel');
  return index < 0 ? Number.POSITIVE_INFINITY : index;
}

/**
 * Decoded text of every id of a tokenizer.json, each decoded once. Special added tokens are their content. Byte tokens
 * that are only part of a UTF-8 character decode to U+FFFD, as `decode([id])` does.
 */
export function decodeVocabulary(tokenizerJson: TokenizerJsonInput, options: DecodeVocabularyOptions = {}): string[] {
  const { tokens, special, decoder } = readTokenizerVocabulary(tokenizerJson);
  const decode = compileTokenDecoder(decoder, options);
  return tokens.map((token, id) => (special[id] ? token : decode(token)));
}
