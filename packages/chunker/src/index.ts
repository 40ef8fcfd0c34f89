export { type ChunkOptions, chunk, chunkLengths, DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH } from './chunk.js';
export {
  compileTokenDecoder,
  type DecodeVocabularyOptions,
  decodeVocabulary,
  readTokenizerVocabulary,
  type TokenizerJsonInput,
  type TokenizerVocabulary,
} from './decode.js';
export {
  CLAUSE_MARKS,
  CLOSING_MARKS,
  type CustomDelimiters,
  type DelimiterLevel,
  type DelimiterOptions,
  type DelimiterSet,
  delimitersFromTokenizerJson,
  delimitersFromVocabulary,
  LINE_BREAKS,
  SENTENCE_MARKS,
  TokenFlag,
  type VocabularyDelimiterOptions,
} from './delimiters.js';
export { TokenizerFormatError } from './errors.js';
