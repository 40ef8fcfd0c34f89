import { describe, expect, test } from 'vitest';
import { StopCriteria } from './stopping.js';

const inVocabulary = (id: number) => {
  if (!Number.isInteger(id) || id < 0 || id >= 100) throw new RangeError(`stop: token id ${id} is outside [0, 100)`);
  return id;
};

describe('StopCriteria', () => {
  test('EOS ids and stop ids end a generation, EOS first', () => {
    const stopping = new StopCriteria([7, 'END'], [0, 7], inVocabulary);
    expect(stopping.tokenStop(0)).toBe('eos');
    expect(stopping.tokenStop(7)).toBe('eos');
    expect(new StopCriteria([7], [0], inVocabulary).tokenStop(7)).toBe('stop');
    expect(stopping.tokenStop(8)).toBeUndefined();
  });

  test('the earliest stop string wins; a possible start of one is held back, no more', () => {
    const stopping = new StopCriteria(['\n\n', 'User:', 'Us'], [], inVocabulary);
    expect(stopping.firstStop('Hello\n\nUser: hi')).toBe(5);
    expect(stopping.firstStop('and Us then')).toBe(4);
    expect(stopping.firstStop('nothing here')).toBe(-1);
    // "User" could still become "User:": 4 characters held; "\n" could become "\n\n"
    expect(stopping.heldBack('Hello User')).toBe(4);
    expect(stopping.heldBack('line\n')).toBe(1);
    expect(stopping.heldBack('plain text')).toBe(0);
    expect(new StopCriteria([], [], inVocabulary).heldBack('anything')).toBe(0);
  });

  test('bad stops are refused', () => {
    expect(() => new StopCriteria([''], [], inVocabulary)).toThrow(/non-empty strings/);
    expect(() => new StopCriteria([{} as never], [], inVocabulary)).toThrow(TypeError);
    expect(() => new StopCriteria([1000], [], inVocabulary)).toThrow(/outside/);
  });
});
