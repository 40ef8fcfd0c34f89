import { chunk, type DelimiterSet, delimitersFromVocabulary, TokenizerFormatError } from '@semanticache/chunker';

const set: DelimiterSet = delimitersFromVocabulary(['a', '.'], { level: 'sentence', specialIds: [] });
const offsets: Uint32Array = chunk([0, 1, 0, 1], set, { minLength: 1, maxLength: 4 });
export const chunks: number = offsets.length - 1;
export const isError: boolean = new TokenizerFormatError('x') instanceof Error;
