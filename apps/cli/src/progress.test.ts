import { describe, expect, it } from 'vitest';
import { Progress } from './progress.js';

describe('Progress', () => {
  function stream(isTTY: boolean) {
    const out: string[] = [];
    return { out, s: { isTTY, columns: 80, write: (t: string) => out.push(t) } };
  }

  it('redraws a bar on a TTY after the first second and ends with one summary line', () => {
    let now = 0;
    const { out, s } = stream(true);
    const p = new Progress('eval', 4, { stream: s, quiet: false, now: () => now });
    p.tick();
    expect(out).toHaveLength(0);
    now = 1500;
    p.tick(1, 'case 2');
    expect(out.at(-1)?.startsWith('\r\u001b[2K')).toBe(true);
    expect(out.at(-1)?.slice(5)).toMatch(/^eval █+░+ 2\/4 eta 1\.5s {2}case 2$/);
    now = 3000;
    p.finish('done');
    expect(out.at(-1)).toBe('eval: done (3.0s)\n');
  });

  it('writes only a compact line when stderr is not a TTY, and nothing when quiet', () => {
    let now = 0;
    const plain = stream(false);
    const p = new Progress('bench', 2, { stream: plain.s, quiet: false, now: () => now });
    now = 2000;
    p.tick(2);
    expect(plain.out).toHaveLength(0);
    p.finish();
    expect(plain.out).toEqual(['bench: 2/2 (2.0s)\n']);
    const slow = stream(false);
    const long = new Progress('eval', 10, { stream: slow.s, quiet: false, now: () => now });
    now += 16_000;
    long.tick(5);
    long.tick(1);
    expect(slow.out).toEqual(['eval: 5/10 eta 16.0s\n']);
    const quiet = stream(true);
    const q = new Progress('x', 1, { stream: quiet.s, quiet: true, now: () => now });
    now = 9000;
    q.tick();
    q.finish('done');
    expect(quiet.out).toHaveLength(0);
  });
});
