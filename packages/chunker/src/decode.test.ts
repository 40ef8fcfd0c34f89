import { describe, expect, it } from 'vitest';
import { decodeVocabulary, readTokenizerVocabulary } from './decode.js';
import { delimitersFromTokenizerJson, TokenFlag } from './delimiters.js';
import { TokenizerFormatError } from './errors.js';
import { DEMO_TOKENIZER_PATH, hfTokenizer, loadJson, QWEN3_TOKENIZER_PATH } from './test-support/fixtures.js';

const RAW = { skip_special_tokens: false, clean_up_tokenization_spaces: false };

/** Every id against HF decode([id]); ids HF decodes to U+FFFD must be partial UTF-8 and never delimiters. */
function crossCheckEveryId(path: string) {
  const json = loadJson(path);
  const reference = hfTokenizer(json);
  const ours = decodeVocabulary(json, { standalone: true });
  const inner = decodeVocabulary(json);
  const set = delimitersFromTokenizerJson(json, { level: 'clause' });
  const mismatches: string[] = [];
  let replacementIds = 0;
  for (let id = 0; id < ours.length; id++) {
    const expected = reference.decode([id], RAW);
    if (ours[id] !== expected || inner[id] !== expected) {
      mismatches.push(`${id}: ${JSON.stringify(ours[id])} vs ${JSON.stringify(expected)}`);
    }
    if (expected.includes('\uFFFD')) {
      replacementIds++;
      // The token ends inside a multi-byte character (or is only its tail): no boundary can be decided from it.
      if (expected.endsWith('\uFFFD') && set.flags[id] & TokenFlag.DELIMITER) mismatches.push(`${id} is a delimiter`);
    }
  }
  return { vocabSize: ours.length, mismatches, replacementIds, reference, set };
}

describe('decodeVocabulary against @huggingface/tokenizers', () => {
  it('decodes every id of the demo tokenizer exactly as decode([id])', () => {
    const { vocabSize, mismatches, replacementIds } = crossCheckEveryId(DEMO_TOKENIZER_PATH);
    expect(vocabSize).toBe(8192);
    expect(mismatches).toEqual([]);
    // The 128 lone bytes ≥ 0x80 of the byte alphabet at least.
    expect(replacementIds).toBeGreaterThanOrEqual(128);
  });

  it('decodes every id of Qwen3 (151 669 ids) exactly as decode([id])', () => {
    const { vocabSize, mismatches, replacementIds, reference, set } = crossCheckEveryId(QWEN3_TOKENIZER_PATH);
    expect(vocabSize).toBe(151_669);
    expect(mismatches).toEqual([]);
    expect(replacementIds).toBeGreaterThan(128);
    // A pair of partial tokens decodes to one whole character: decide by the whole token only, as documented.
    const ids = reference.encode('𝔘.', { add_special_tokens: false }).ids;
    expect(ids.length).toBeGreaterThan(2);
    expect(reference.decode(ids, RAW)).toBe('𝔘.');
    expect(set.isDelimiter[ids[ids.length - 1]]).toBe(1);
  });

  it('marks special added tokens as never delimiters and keeps their content', () => {
    const json = loadJson(QWEN3_TOKENIZER_PATH);
    const { special } = readTokenizerVocabulary(json);
    const texts = decodeVocabulary(json);
    const set = delimitersFromTokenizerJson(json);
    expect(texts[151643]).toBe('<|endoftext|>');
    expect(special[151643]).toBe(1);
    expect(special[151657]).toBe(0); // <tool_call> is added but not special
    for (let id = 0; id < special.length; id++) if (special[id]) expect(set.flags[id]).toBe(0);
  });
});

/** A Llama-2-style tokenizer.json: BPE with byte fallback, Metaspace-like decoder sequence. */
function sentencePieceJson(decoder: unknown) {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  pieces.push('▁Hello', '▁world', '.', '▁.', '!', ',', '▁"', '."', '▁▁', '▁', 'ing', '▁the', '。', '▁x▁y', '▁▁end');
  return {
    version: '1.0',
    added_tokens: [0, 1, 2].map((id) => ({ id, content: pieces[id], special: true, normalized: false })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder,
    model: {
      type: 'BPE',
      byte_fallback: true,
      fuse_unk: true,
      unk_token: '<unk>',
      vocab: Object.fromEntries(pieces.map((piece, id) => [piece, id])),
      merges: [],
    },
  };
}

const LLAMA2_DECODER = {
  type: 'Sequence',
  decoders: [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ],
};

function crossCheckSynthetic(json: Record<string, unknown>) {
  const reference = hfTokenizer(json);
  const standalone = decodeVocabulary(json, { standalone: true });
  const inner = decodeVocabulary(json);
  const anchor = (json.model as { vocab: Record<string, number> }).vocab.ing;
  const anchorText = reference.decode([anchor], RAW);
  for (let id = 0; id < standalone.length; id++) {
    expect(standalone[id], `standalone ${id}`).toBe(reference.decode([id], RAW));
    if (id > 2) expect(inner[id], `inner ${id}`).toBe(reference.decode([anchor, id], RAW).slice(anchorText.length));
  }
  return { standalone, inner };
}

describe('decodeVocabulary on SentencePiece-style decoders', () => {
  it('Replace + ByteFallback + Fuse + Strip (Llama 2)', () => {
    const { inner, standalone } = crossCheckSynthetic(sentencePieceJson(LLAMA2_DECODER));
    expect(inner[3 + 0x0a]).toBe('\n'); // <0x0A>
    expect(inner[3 + 0xe3]).toBe('\uFFFD'); // a lone lead byte
    expect(inner[259]).toBe(' Hello');
    expect(standalone[259]).toBe('Hello');
  });

  it('Metaspace with prepend_scheme and with the legacy add_prefix_space', () => {
    for (const decoder of [
      { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      { type: 'Metaspace', replacement: '▁', add_prefix_space: true },
    ]) {
      const { inner } = crossCheckSynthetic(sentencePieceJson(decoder));
      expect(inner[259]).toBe(' Hello');
    }
  });

  it('Metaspace with ByteFallback in a Sequence decodes byte tokens', () => {
    const decoder = {
      type: 'Sequence',
      decoders: [{ type: 'ByteFallback' }, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first' }],
    };
    const { inner } = crossCheckSynthetic(sentencePieceJson(decoder));
    expect(inner[3 + 0x2e]).toBe('.');
  });

  it('WordPiece "##" continuation pieces', () => {
    const vocab = ['[UNK]', '[CLS]', 'hello', '##ing', '.', ',', 'world', '##s', '!', 'ing'];
    const json = {
      added_tokens: [
        { id: 0, content: '[UNK]', special: true },
        { id: 1, content: '[CLS]', special: true },
      ],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: {
        type: 'WordPiece',
        unk_token: '[UNK]',
        continuing_subword_prefix: '##',
        max_input_chars_per_word: 100,
        vocab: Object.fromEntries(vocab.map((piece, id) => [piece, id])),
      },
    };
    const { inner } = crossCheckSynthetic(json);
    expect(inner.slice(2, 9)).toEqual([' hello', 'ing', '.', ',', ' world', 's', '!']);
  });

  it('BPEDecoder suffixes and Strip at both ends match decode([id])', () => {
    const pieces = ['<unk>', 'hello</w>', 'wor', 'ld.</w>', '__x__', '_'];
    for (const decoder of [
      { type: 'BPEDecoder', suffix: '</w>' },
      { type: 'Strip', content: '_', start: 2, stop: 1 },
    ]) {
      const json = {
        added_tokens: [{ id: 0, content: '<unk>', special: true }],
        normalizer: null,
        pre_tokenizer: null,
        post_processor: null,
        decoder,
        model: {
          type: 'BPE',
          unk_token: '<unk>',
          vocab: Object.fromEntries(pieces.map((p, id) => [p, id])),
          merges: [],
        },
      };
      const reference = hfTokenizer(json);
      const ours = decodeVocabulary(json, { standalone: true });
      for (let id = 0; id < pieces.length; id++)
        expect(ours[id], `${decoder.type} ${id}`).toBe(reference.decode([id], RAW));
    }
    const inner = decodeVocabulary({ model: { vocab: { 'hello</w>': 0, wor: 1 } }, decoder: { type: 'BPEDecoder' } });
    expect(inner).toEqual(['hello ', 'wor']);
  });

  it('a null decoder keeps raw tokens; a Unigram vocabulary is an array of [piece, score]', () => {
    const json = {
      decoder: null,
      model: {
        type: 'Unigram',
        vocab: [
          ['<unk>', 0],
          ['a.', -1],
          ['b', -2],
        ],
      },
    };
    expect(decodeVocabulary(json)).toEqual(['<unk>', 'a.', 'b']);
  });
});

describe('malformed tokenizer.json', () => {
  it('rejects text that is not JSON', () => {
    expect(() => decodeVocabulary('{"model": ')).toThrow(TokenizerFormatError);
    expect(() => decodeVocabulary('{"model": ')).toThrow(/not valid JSON/);
  });
  it('rejects a JSON value that is not an object', () => {
    expect(() => decodeVocabulary('[1, 2]')).toThrow(TypeError);
    expect(() => decodeVocabulary(42 as never)).toThrow(TypeError);
  });
  it('rejects a missing model or vocabulary', () => {
    expect(() => decodeVocabulary({ decoder: null })).toThrow(/no "model"/);
    expect(() => decodeVocabulary({ model: { type: 'BPE' } })).toThrow(/no "vocab"/);
    expect(() => decodeVocabulary({ model: { type: 'BPE', vocab: {} } })).toThrow(/empty vocabulary/);
  });
  it('rejects bad ids and added tokens', () => {
    expect(() => decodeVocabulary({ model: { vocab: { a: -1 } } })).toThrow(TokenizerFormatError);
    expect(() => decodeVocabulary({ model: { vocab: { a: 1.5 } } })).toThrow(/not an integer in 0\.\.16777215/);
    expect(() => decodeVocabulary({ model: { vocab: { a: 2 ** 31 - 1 } } })).toThrow(TokenizerFormatError);
    expect(() => decodeVocabulary({ model: { vocab: { a: 0 } }, added_tokens: [{ id: 1 }] })).toThrow(/content/);
    expect(() => decodeVocabulary({ model: { vocab: [['a']] as unknown[], type: 'Unigram' } })).not.toThrow();
    expect(() => decodeVocabulary({ model: { vocab: ['a'] } })).toThrow(/pair/);
  });
  it('names an unsupported decoder type', () => {
    const json = { model: { vocab: { a: 0 } }, decoder: { type: 'CTC', pad_token: '<pad>' } };
    expect(() => decodeVocabulary(json)).toThrow(TokenizerFormatError);
    expect(() => decodeVocabulary(json)).toThrow(/unsupported type "CTC"/);
    expect(() => delimitersFromTokenizerJson(json)).toThrow(/delimitersFromVocabulary/);
  });
  it('accepts the file as text or bytes', () => {
    const text = JSON.stringify({ model: { vocab: { 'a.': 0, b: 1 } }, decoder: null });
    expect(decodeVocabulary(text)).toEqual(['a.', 'b']);
    expect(decodeVocabulary(new TextEncoder().encode(text))).toEqual(['a.', 'b']);
  });
});
