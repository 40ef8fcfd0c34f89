import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot, repoRoot } from './test-support.js';

// These run the built command (`pnpm build` first; turbo's test task depends on build) on the embedded demo model.
const cli = path.join(packageRoot, 'dist', 'cli.js');
const demoText = readFileSync(path.join(packageRoot, 'assets', 'demo-text.txt'), 'utf8');
const tmp = mkdtempSync(path.join(tmpdir(), 'semanticache-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], input?: string): { child: ChildProcess; done: Promise<Result> } {
  const child = spawn(process.execPath, [cli, ...args], { cwd: tmp, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  child.stdin?.end(input ?? '');
  const done = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

const run = (args: string[], input?: string) => start(args, input).done;

beforeAll(() => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`pnpm build\` in apps/cli first`);
});

describe('usage', () => {
  it('prints the command list, and each command its help', async () => {
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage: semanticache <command>');
    for (const name of ['demo', 'run', 'generate', 'eval', 'bench', 'inspect']) {
      expect(none.stdout).toContain(name);
      const help = await run([name, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('--model');
    }
  });

  it('answers bad flags, bad values and unknown commands with a usage error and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['run', 'hi', '--bogus'], /Unknown option '--bogus'/],
      [['eval', '--ratios', '0.5,1.2'], /--ratios: a ratio is the fraction of entries removed/],
      [['bench', '--lengths', 'ten'], /--lengths: expected a number/],
      [['eval', '--policies', 'lru'], /--policies: unknown value 'lru'/],
      [['eval', '--policies', 'semanticache:nope'], /--policies: unknown semanticache preset 'nope'/],
      [['eval', '--policies', 'full,snapkv', '--reference', 'h2o'], /--reference: 'h2o' is not one of --policies/],
      [['eval', '--depths', '0,maybe'], /--depths: expected a number, got 'maybe'/],
      [
        ['eval', '--tasks', 'decode-ppl', '--context', '4096', '--decode-target', '8192'],
        /--context \+ --decode-target needs 12288 tokens but .* has a context of 8192/,
      ],
      [['inspect', '--threshold', '0.9', '--ratio', '0.5'], /not both/],
      [['bench', '--lengths', '128', '--ratio', '0.75'], /keeps 32 entries, fewer than the 36 protected/],
      [['run', 'x', '--weights', 'int3'], /--weights: unknown value 'int3' \(expected one of float32, int8, int4\)/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('treats missing model paths as usage errors', async () => {
    const missing = await run(['run', 'hi', '--model', path.join(tmp, 'no-such-model')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--model: no such file or folder/);
    const notHf = await run(['bench', '--model', path.join(repoRoot, 'fixtures', 'stories260K')]);
    expect(notHf.code).toBe(2);
    expect(notHf.stderr).toMatch(/not an HF model folder/);
    const noText = await run(['eval', '--text', path.join(tmp, 'missing.txt')]);
    expect(noText.code).toBe(2);
  });

  it('reports a model that fails to load as a one-line runtime error with exit code 1', async () => {
    const broken = path.join(tmp, 'broken-model');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'config.json'), '{"model_type": "llama"}');
    writeFileSync(path.join(broken, 'tokenizer.json'), '{}');
    const r = await run(['run', 'hi', '--model', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^semanticache run: ModelLoadError: /);
  });
});

describe('run', () => {
  it('streams a continuation and reports it as JSON', async () => {
    const r = await run([
      'run',
      'Once upon a time',
      '--max-tokens',
      '12',
      '--temperature',
      '0',
      '--policy',
      'full',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.completionTokens).toBeGreaterThan(0);
    expect(out.completionTokens).toBeLessThanOrEqual(12);
    expect(out.text.length).toBeGreaterThan(0);
    expect(out.cache.entries).toBe(out.cache.fullEntries);
    expect(r.stderr).toBe('');
  });

  it('compresses a long prompt read from stdin', async () => {
    const prompt = demoText.slice(0, 3000);
    const r = await run(['run', '--max-tokens', '4', '--ratio', '0.5', '--temperature', '0', '--json'], prompt);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.policy).toBe('semanticache');
    expect(out.promptTokens).toBeGreaterThan(300);
    // half the prompt's entries are gone; the generated tokens are appended raw
    const perHead = out.cache.fullEntries / (8 * 6);
    const kept = out.cache.entries / (8 * 6);
    expect(kept).toBeLessThan(perHead * 0.5 + 4);
    expect(kept).toBeGreaterThan(perHead * 0.5 - 4);
  });

  it('runs a llama2.c checkpoint and stops at a stop string', async () => {
    const model = path.join(repoRoot, 'fixtures', 'stories260K', 'stories260K.bin');
    const r = await run([
      'run',
      'Once upon a time',
      '--model',
      model,
      '--policy',
      'full',
      '--temperature',
      '0',
      '--max-tokens',
      '64',
      '--stop',
      '.',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.text).not.toContain('.');
    expect(out.completionTokens).toBeGreaterThan(0);
  });
});

describe('a reader that stops early (… | head -c 20)', () => {
  it('ends run quietly with exit code 0, without an EPIPE trace, and stops generating', async () => {
    const { child, done } = start(['run', 'Once upon a time', '--max-tokens', '1000', '--temperature', '0']);
    // close our end of the pipe after the first bytes, as `head -c 20` does
    child.stdout?.once('data', () => child.stdout?.destroy());
    const r = await done;
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
    expect(r.code, r.stderr).toBe(0);
    // it stopped at the next token instead of generating the rest: no closing summary
    expect(r.stderr).not.toMatch(/generated tokens/);
  });

  it('gives the CLI the exit status 0 in a shell pipeline into head', async () => {
    const child = spawn(
      'bash',
      [
        '-c',
        'set -o pipefail; "$0" "$1" run "Once upon a time" --max-tokens 1000 --temperature 0 | head -c 20 >/dev/null',
        process.execPath,
        cli,
      ],
      { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code, stderr).toBe(0);
  });
});

describe('budgets below the protected entries', () => {
  it('run, demo and inspect compress a short prompt as far as they can, and say so', async () => {
    const short = demoText.slice(0, 300); // ~70 tokens: 36 are protected
    for (const budget of [
      ['--ratio', '0.75'],
      ['--ratio', '0.99'],
      ['--max-entries', '36'],
    ]) {
      const r = await run(['run', short, '--max-tokens', '3', '--temperature', '0', ...budget]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/budget is below the protected entries .* on 48 of 48 heads/);
    }
    const file = path.join(tmp, 'short.txt');
    writeFileSync(file, short);
    const demo = await run(['demo', '--text', file, '--max-tokens', '3', '--json']);
    expect(demo.code, demo.stderr).toBe(0);
    expect(JSON.parse(demo.stdout).runs[1].headsAboveBudget).toBe(48);
    const inspect = await run(['inspect', '--tokens', '60', '--ratio', '0.75', '--out', path.join(tmp, 'short.html')]);
    expect(inspect.code, inspect.stderr).toBe(0);
  });
});

describe('Ctrl-C', () => {
  it("during run's prefill reports the tokens really fed and skips the compression", async () => {
    const { child, done } = start(['run', '--max-tokens', '8', '--temperature', '0'], demoText);
    // the prompt (~4500 tokens) is fed in blocks of 512 after the model is loaded
    child.stderr?.on('data', function check(d: Buffer) {
      if (String(d).includes('loaded')) {
        child.stderr?.off('data', check);
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(r.code, r.stderr).toBe(130);
    const m = r.stderr.match(/interrupted during prefill: fed (\d+) of (\d+) prompt tokens/);
    expect(m, r.stderr).not.toBeNull();
    const [fed, prompt] = [Number(m?.[1]), Number(m?.[2])];
    expect(prompt).toBeGreaterThan(2000);
    expect(fed).toBeLessThan(prompt);
    expect(fed % 512).toBe(0);
    expect(r.stderr).toContain('compression skipped (interrupted)');
    expect(r.stderr).not.toMatch(/budget is below/);
    // the cache holds exactly the fed tokens, uncompressed: 8 layers × 6 KV heads each
    const cache = r.stderr.match(/cache (\d+)\/(\d+) entries/);
    expect(Number(cache?.[1])).toBe(fed * 48);
    expect(Number(cache?.[2])).toBe(fed * 48);
    expect(r.stdout.trim()).toBe('');
  });
});

describe('eval', () => {
  it('measures perplexity and retrieval on a tiny grid and writes table, JSON and plots', async () => {
    const out = path.join(tmp, 'eval');
    const r = await run([
      'eval',
      ...['--policies', 'full,semanticache,streaming-llm,h2o', '--ratios', '0.5'],
      ...['--context', '256', '--target', '32', '--windows', '2'],
      ...['--lengths', '256', '--depths', '0,1', '--cases', '1', '--out', out, '--json'],
    ]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.perplexity.map((p: { config: { label: string } }) => p.config.label)).toEqual([
      'full',
      'semanticache@0.5',
      'streaming-llm@0.5',
      'h2o@0.5',
    ]);
    for (const p of res.perplexity) {
      expect(p.windows).toBe(2);
      expect(p.tokens).toBe(64);
      expect(p.ppl).toBeGreaterThan(1);
      expect(p.ppl).toBeLessThan(8192);
      expect(p.keptFraction).toBeCloseTo(p.config.policy === 'full' ? 1 : 0.5, 2);
    }
    // 2 tasks × 1 length × 2 depths × 4 configs, one case each
    expect(res.retrieval).toHaveLength(16);
    for (const cell of res.retrieval) expect(cell.cases).toBe(1);
    const md = readFileSync(path.join(out, 'eval.md'), 'utf8');
    expect(md).toContain('| policy        | ratio |');
    expect(md).toMatch(/\| semanticache +\| +0\.5 \|/);
    for (const name of ['eval-ppl.svg', 'eval-passkey.svg', 'eval-code-recall.svg']) {
      const svg = readFileSync(path.join(out, name), 'utf8');
      expect(svg).toMatch(/^<svg xmlns/);
      expect(svg.match(/<g class="series"/g)).toHaveLength(4);
    }
    expect(res.files).toContain(path.join(out, 'eval.json'));
  });

  it('stops cleanly on SIGINT and reports what it measured', async () => {
    const { child, done } = start([
      'eval',
      '--tasks',
      'ppl',
      '--context',
      '1024',
      '--target',
      '64',
      '--windows',
      '8',
      '--out',
      path.join(tmp, 'eval-int'),
    ]);
    await new Promise<void>((resolve) => {
      const check = (d: Buffer) => {
        if (String(d).includes('loaded')) {
          child.stderr?.off('data', check);
          setTimeout(() => child.kill('SIGINT'), 500);
          resolve();
        }
      };
      child.stderr?.on('data', check);
    });
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.stdout).toContain('interrupted, partial results');
    // the report says how many of the planned windows every config was really scored on
    const scored = r.stdout.match(/- ppl \(C=1024, T=64\): (\d+) of 8 windows/);
    expect(scored, r.stdout).not.toBeNull();
    expect(Number(scored?.[1])).toBeLessThan(8);
    const json = JSON.parse(readFileSync(path.join(tmp, 'eval-int', 'eval.json'), 'utf8'));
    expect(json.coverage).toEqual([{ task: 'ppl', unit: 'windows', done: Number(scored?.[1]), planned: 8 }]);
  });
});

describe('bench', () => {
  it('measures speed and KV bytes per policy and context length', async () => {
    const out = path.join(tmp, 'bench');
    const r = await run([
      'bench',
      '--lengths',
      '192,256',
      '--policies',
      'semanticache,full',
      '--decode-tokens',
      '4',
      '--out',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.rows).toHaveLength(4);
    for (const length of [192, 256]) {
      const [sc, full] = ['semanticache', 'full'].map((p) =>
        res.rows.find((x: { policy: string; contextTokens: number }) => x.policy === p && x.contextTokens === length),
      );
      expect(sc.kvBytes).toBeLessThan(full.kvBytes);
      expect(full.kvBytes).toBe(full.fullKvBytes);
      expect(sc.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(sc.prefillTokensPerSecond).toBeGreaterThan(0);
    }
    expect(readFileSync(path.join(out, 'bench.md'), 'utf8')).toContain('decode tok/s');
    expect(existsSync(path.join(out, 'bench-decode.svg'))).toBe(true);
  });
});

describe('inspect', () => {
  it('writes an HTML page with one element per token, the chunks and the cores', async () => {
    const file = path.join(tmp, 'inspect.html');
    const r = await run(['inspect', '--tokens', '300', '--layer', '3', '--head', '2', '--out', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.tokens).toBe(300);
    const html = readFileSync(file, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    const tokens = [...html.matchAll(/<span class="tok[^"]*" data-i="(\d+)"/g)].map((m) => Number(m[1]));
    expect(tokens).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(html.match(/<span class="chunk /g)).toHaveLength(summary.chunks);
    expect(summary.chunks).toBeGreaterThan(5);
    expect(html.match(/<span class="core/g)).toHaveLength(summary.clusters);
    expect(html.match(/<tr/g)).toHaveLength(8);
    expect(summary.removedPerLayer).toHaveLength(8);
    // the protected tokens: 4 sinks and the last 32
    expect(html.match(/class="tok prot"/g)).toHaveLength(36);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('at a ratio, shows the tokens the default policy dropped beside the ones it merged', async () => {
    const file = path.join(tmp, 'ratio.html');
    const r = await run(['inspect', '--tokens', '300', '--ratio', '0.75', '--out', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    const html = readFileSync(file, 'utf8');
    const count = (cls: string) => html.match(new RegExp(`class="tok ${cls}"`, 'g'))?.length ?? 0;
    // ⌊300 · 0.25⌋ = 75 entries kept: the 36 protected tokens and one core per cluster
    expect(summary.clusters + 36).toBe(75);
    expect(count('prot')).toBe(36);
    expect(count('drop')).toBeGreaterThan(0);
    expect(count('prot') + count('drop') + count('merged') + count('single')).toBe(300);
    expect(html).toContain(`<span>dropped tokens (in no core)</span><b>${count('drop')}</b>`);
  });

  it('shows the middle layer unless told otherwise', async () => {
    const r = await run(['inspect', '--tokens', '120', '--out', path.join(tmp, 'mid.html'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ layer: 4, head: 0, tokens: 120 });
  });

  it('rejects a layer the model does not have', async () => {
    const r = await run(['inspect', '--layer', '8', '--out', path.join(tmp, 'x.html')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--layer: the model has 8 layers/);
  });
});

describe('demo', () => {
  it('shows the full and the compressed cache side by side', async () => {
    const text = path.join(tmp, 'short.txt');
    writeFileSync(text, demoText.slice(0, 2500));
    const r = await run(['demo', '--text', text, '--max-tokens', '6']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/full cache +│ semanticache@0\.75/);
    expect(r.stdout).toMatch(/cache entries +[\d,]+ \(100\.0%\) +│ [\d,]+ \(\d+\.\d%\)/);
    expect(r.stdout).toContain('full cache continues:');
    expect(r.stdout).toContain('semanticache@0.75 continues:');
  });
});

describe('serve', () => {
  it('serves the demo model over HTTP until Ctrl-C, then exits 0', async () => {
    const { child, done } = start(['serve', '--port', '0']);
    const url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      child.stderr?.on('data', (d: Buffer) => {
        seen += d;
        const m = seen.match(/listening on (http:\/\/\S+)/);
        if (m) resolve(m[1]);
      });
      child.on('close', () => reject(new Error(`exited before listening: ${seen}`)));
    });
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(['semanticache-demo']);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
  });
});
