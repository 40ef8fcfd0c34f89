import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeLong, splitForEncoding } from './long-text.js';
import { HELD_OUT_PATH } from './test-support.js';

const book = readFileSync(HELD_OUT_PATH, 'utf8');

describe('splitForEncoding', () => {
  it('cuts a book into bounded pieces that join back to the text, each ending before whitespace', () => {
    const pieces = splitForEncoding(book, 2000);
    expect(pieces.join('')).toBe(book);
    expect(pieces.length).toBeGreaterThan(book.length / 2000);
    for (const p of pieces.slice(0, -1)) {
      expect(p.length).toBeLessThanOrEqual(2000);
      expect(p.length).toBeGreaterThan(1000);
      expect(p).toMatch(/\S$/);
    }
    for (const p of pieces.slice(1)) expect(p).toMatch(/^\s/);
  });

  it('keeps short texts whole, cuts unbroken runs anywhere and rejects tiny limits', () => {
    expect(splitForEncoding('short text', 100)).toEqual(['short text']);
    expect(splitForEncoding('', 100)).toEqual(['']);
    expect(splitForEncoding('x'.repeat(50), 16).map((p) => p.length)).toEqual([16, 16, 16, 2]);
    expect(() => splitForEncoding('abc', 4)).toThrow(RangeError);
  });
});

describe('encodeLong', () => {
  it('adds special tokens only before the first piece', () => {
    const calls: boolean[] = [];
    const codec = {
      encode: (t: string, o?: { addSpecialTokens?: boolean }) => {
        calls.push(o?.addSpecialTokens ?? true);
        return [t.length];
      },
    };
    const ids = encodeLong(codec, book.slice(0, 9000));
    expect(calls[0]).toBe(true);
    expect(calls.slice(1).every((c) => c === false)).toBe(true);
    expect(ids.reduce((a, b) => a + b, 0)).toBe(9000);
  });
});
