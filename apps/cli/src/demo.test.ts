import { describe, expect, it } from 'vitest';
import { sideBySide, wrap } from './commands/demo.js';

describe('demo layout', () => {
  it('wraps words to the column width and keeps line breaks', () => {
    expect(wrap('the quick brown fox jumps\nover', 10)).toEqual(['the quick', 'brown fox', 'jumps', 'over']);
    expect(wrap('abcdefghijklmnop', 6)).toEqual(['abcdef', 'ghijkl', 'mnop']);
  });

  it('sets two columns side by side', () => {
    expect(sideBySide(['a', 'bb'], ['x'], 3)).toBe('a   │ x\nbb  │\n');
  });
});
