/**
 * Splits a long text into pieces of at most about `maxChars` characters for separate encoding. Pieces end right
 * before a whitespace run (preferably a paragraph break) that follows a non-space, so the whitespace stays with the
 * word after it — where byte-level BPE pre-tokenizers put it anyway — and the pieces' ids concatenate to the ids of
 * the whole text. Encoding in pieces keeps tokenizers whose cost grows with the square of the input (llama2.c's)
 * usable on book-length texts.
 */
export function splitForEncoding(text: string, maxChars = 2000): string[] {
  if (!Number.isInteger(maxChars) || maxChars < 16)
    throw new RangeError(`maxChars must be an integer ≥ 16, got ${maxChars}`);
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > maxChars) {
    const window = text.slice(start, start + maxChars);
    // last paragraph break, else last space, in the second half of the window
    let cut = -1;
    for (const pattern of [/\S(?=\n\s*\n)/g, /\S(?=\s)/g]) {
      let m: RegExpExecArray | null = null;
      let last = -1;
      pattern.lastIndex = 0;
      for (m = pattern.exec(window); m !== null; m = pattern.exec(window)) last = m.index + 1;
      if (last > maxChars / 2) {
        cut = last;
        break;
      }
    }
    if (cut < 0) cut = maxChars; // one unbroken run: cut anywhere
    pieces.push(text.slice(start, start + cut));
    start += cut;
  }
  if (start < text.length || pieces.length === 0) pieces.push(text.slice(start));
  return pieces;
}

/** Token ids of a long text, encoded piece by piece; special tokens (e.g. BOS) only before the first piece. */
export function encodeLong(
  codec: { encode(text: string, options?: { addSpecialTokens?: boolean }): number[] },
  text: string,
  options: { addSpecialTokens?: boolean } = {},
): number[] {
  const ids: number[] = [];
  splitForEncoding(text).forEach((piece, i) => {
    for (const id of codec.encode(piece, { addSpecialTokens: i === 0 && (options.addSpecialTokens ?? true) }))
      ids.push(id);
  });
  return ids;
}
