/** A tokenizer.json (or other vocabulary source) that cannot be read: not JSON, no model vocabulary, or a decoder we do not implement. */
export class TokenizerFormatError extends Error {
  override readonly name = 'TokenizerFormatError';
}
