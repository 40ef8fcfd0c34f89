import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Budget, CacheStats, Engine, EngineSession, PolicyName } from './engine.js';
import { evalCharts, evalMarkdown, evalTables, pairedTables } from './eval-report.js';
import {
  type Config,
  configsFor,
  type EvalResults,
  type EvalSettings,
  type RetrievalResult,
  runEval,
  scoreWhileCompressing,
  windowStarts,
} from './harness.js';
import { encodeLong } from './long-text.js';
import { loadRuntimeEngine } from './runtime-engine.js';
import { pairedPerplexityDifference } from './stats.js';
import { renderLineChart } from './svg.js';
import { toMarkdown } from './table.js';
import { DEMO_MODEL_DIR, HELD_OUT_PATH } from './test-support.js';

/** Loads the embedded demo model as the runtime engine before a describe block's tests, and disposes of it after. */
function withDemoEngine(set: (engine: Engine) => void): void {
  let loaded: Engine | undefined;
  beforeAll(async () => {
    loaded = await loadRuntimeEngine({
      format: 'hf',
      dir: DEMO_MODEL_DIR,
      label: 'demo',
    });
    set(loaded);
  }, 60_000);
  afterAll(async () => {
    await loaded?.dispose();
  });
}

describe('eval grid', () => {
  it('lists the full cache once and every other policy at every ratio', () => {
    const configs = configsFor(['semanticache', 'full', 'h2o'], [0.5, 0.75]);
    expect(configs.map((c) => c.label)).toEqual([
      'full',
      'semanticache@0.5',
      'semanticache@0.75',
      'h2o@0.5',
      'h2o@0.75',
    ]);
  });

  it('runs semanticache presets as their own configs, labelled NAME:PRESET@ratio', () => {
    const configs = configsFor(
      ['full', 'semanticache', 'semanticache:paper', 'semanticache:default', 'snapkv'],
      [0.75],
    );
    expect(configs.map((c) => c.label)).toEqual([
      'full',
      'semanticache@0.75',
      'semanticache:paper@0.75',
      'snapkv@0.75',
    ]);
    expect(configs[2]).toEqual({
      policy: 'semanticache',
      preset: 'paper',
      ratio: 0.75,
      label: 'semanticache:paper@0.75',
    });
    expect(configs[1].preset).toBeUndefined();
    expect(() => configsFor(['semanticache:bogus'], [0.5])).toThrow(/unknown semanticache preset 'bogus'/);
    expect(() => configsFor(['snapkv:paper'], [0.5])).toThrow(/only semanticache takes a preset/);
    expect(() => configsFor(['lru'], [0.5])).toThrow(/unknown value 'lru'/);
  });

  it('spreads perplexity windows evenly and refuses a text shorter than one window', () => {
    expect(windowStarts(1000, 300, 3)).toEqual([0, 350, 700]);
    expect(windowStarts(300, 300, 4)).toEqual([0]);
    expect(() => windowStarts(200, 300, 1)).toThrow(/fewer than one window/);
  });

  const results: EvalResults = {
    model: 'm',
    settings: {
      tasks: ['ppl', 'passkey'],
      policies: ['full', 'semanticache', 'snapkv'],
      ratios: [0.5, 0.75],
      context: 64,
      target: 8,
      windows: 1,
      lengths: [100, 200],
      depths: [0, 1],
      cases: 1,
      seed: 0,
      queryAware: false,
    },
    interrupted: false,
    perplexity: configsFor(['full', 'semanticache', 'snapkv'], [0.5, 0.75]).map((config, i) => ({
      config,
      windows: 1,
      tokens: 8,
      nll: 8 * (3 + i / 10),
      ppl: Math.exp(3 + i / 10),
      keptFraction: 1 - config.ratio,
    })),
    retrieval: configsFor(['full', 'semanticache', 'snapkv'], [0.5, 0.75]).flatMap((config) =>
      [100, 200].flatMap((contextTokens) =>
        [0, 1].map((depth) => ({
          config,
          task: 'passkey' as const,
          contextTokens,
          depth,
          cases: 2,
          passed: config.policy === 'snapkv' && depth === 1 ? 0 : 2,
        })),
      ),
    ),
    retrievalKept: [],
  };

  it('tabulates policy × budget × metric with the full cache as the baseline', () => {
    const [summary, byLength, byDepth] = evalTables(results);
    expect(summary.columns).toEqual([
      'policy',
      'ratio',
      'kept',
      'ppl',
      'Δppl vs full',
      'Δppl SE',
      'passkey acc',
      'passkey acc SE',
    ]);
    // no per-window records in this fixture: no standard error of Δppl
    expect(summary.rows[0]).toEqual(['full', 0, 1, Math.exp(3), 0, null, 1, 0]);
    expect(summary.rows[3][0]).toBe('snapkv');
    expect(summary.rows[3][4]).toBeCloseTo(Math.exp(3.3) - Math.exp(3), 10);
    expect(summary.rows[3][5]).toBeNull();
    expect(summary.rows[3][6]).toBe(0.5);
    expect(summary.rows[3][7]).toBeCloseTo(Math.sqrt(0.25 / 8), 12); // 4 of 8 cases
    expect(byLength.columns).toEqual(['policy', 'ratio', '100 tok', '200 tok']);
    expect(byDepth.rows[3]).toEqual(['snapkv', 0.5, 1, 0]);
    expect(toMarkdown(summary)).toContain('| semanticache |  0.75 |');
  });

  it('states what a complete run measured in one line per task, and a text too short for every window', () => {
    const complete: EvalResults = {
      ...results,
      coverage: [
        { task: 'ppl', unit: 'windows', done: 1, planned: 1 },
        ...[100, 200].flatMap((contextTokens) =>
          [0, 1].map((depth) => ({
            task: 'passkey' as const,
            contextTokens,
            depth,
            unit: 'cases' as const,
            done: 2,
            planned: 2,
          })),
        ),
      ],
    };
    const md = evalMarkdown(complete);
    expect(md).toContain('Measured (every config on the same windows and cases');
    expect(md).not.toContain('interrupt');
    expect(md).toContain('- ppl (C=64, T=8): 1 of 1 windows\n');
    expect(md).toContain('- passkey: 2 of 2 cases in each of the 4 length × depth cells\n');
    const short = evalMarkdown({ ...complete, settings: { ...complete.settings, windows: 3 } });
    expect(short).toContain('- ppl (C=64, T=8): 1 of 1 windows (the text has room for 1 of the 3 asked)\n');
    // results without coverage (older files) get no such section
    expect(evalMarkdown(results)).not.toContain('Measured');
  });

  it('plots one line per policy against the ratio plus the full-cache reference', () => {
    const charts = evalCharts(results);
    expect(charts.map((c) => c.name)).toEqual(['ppl', 'passkey']);
    const ppl = charts[0].chart;
    expect(ppl.series.map((s) => s.name)).toEqual(['semanticache', 'snapkv', 'full cache']);
    expect(ppl.series[0].points).toEqual([
      [0.5, Math.exp(3.1)],
      [0.75, Math.exp(3.2)],
    ]);
    expect(ppl.series[2]).toMatchObject({
      role: 'reference',
      points: [
        [0, Math.exp(3)],
        [0.75, Math.exp(3)],
      ],
    });
    expect(charts[1].chart.series[1].points).toEqual([
      [0.5, 0.5],
      [0.75, 0.5],
    ]);
    expect(renderLineChart(ppl)).toContain('>full cache</text>');
  });
});

describe('one prefill, many policies', () => {
  let engine: Engine;
  // the start of the held-out slice (the CLI's demo text): the tests read its first few hundred tokens
  const text = readFileSync(HELD_OUT_PATH, 'utf8').slice(0, 8000);

  withDemoEngine((loaded) => {
    engine = loaded;
  });

  it('encodes a book piece by piece into exactly the ids of encoding it whole', () => {
    const book = readFileSync(HELD_OUT_PATH, 'utf8');
    const whole = engine.encode(book, { addSpecialTokens: false });
    expect(whole.length).toBeGreaterThan(40_000);
    expect(encodeLong(engine, book, { addSpecialTokens: false })).toEqual(whole);
  });

  it('a forked session compresses and scores exactly like a fresh one', async () => {
    const ids = engine.encode(text).slice(0, 400);
    const context = ids.slice(0, 340);
    const target = ids.slice(340);
    for (const policy of ['semanticache', 'snapkv', 'h2o'] as PolicyName[]) {
      const fresh = engine.session(policy, { ratio: 0.5 });
      await fresh.prefill(context);
      await fresh.compress();
      const expected = await fresh.score(target);
      fresh.dispose();
      const probe = engine.session(policy === 'h2o' ? 'h2o' : 'snapkv', { ratio: 0 });
      await probe.prefill(context);
      const fork = probe.fork(policy, { ratio: 0.5 });
      await fork.compress();
      expect(fork.stats().entries).toBe(Math.floor(340 * 0.5) * 8 * 6);
      const got = await fork.score(target);
      expect(got.nll).toBe(expected.nll);
      expect(got.count).toBe(60);
      fork.dispose();
      probe.dispose();
    }
  });

  it('a fork passes the semanticache preset on: it matches a fresh session with that preset, not the default', async () => {
    const ids = engine.encode(text).slice(0, 400);
    const context = ids.slice(0, 340);
    const target = ids.slice(340);
    const fresh = engine.session('semanticache', { ratio: 0.5 }, { preset: 'paper' });
    await fresh.prefill(context);
    await fresh.compress();
    const expected = await fresh.score(target);
    fresh.dispose();
    const probe = engine.session('snapkv', { ratio: 0 });
    await probe.prefill(context);
    const nllOf = async (preset?: string) => {
      const fork = probe.fork('semanticache', { ratio: 0.5 }, preset ? { preset } : {});
      await fork.compress();
      const got = await fork.score(target);
      fork.dispose();
      return got.nll;
    };
    expect(await nllOf('paper')).toBe(expected.nll);
    expect(await nllOf()).not.toBe(expected.nll);
    probe.dispose();
  });

  it('decode-ppl scores like the runtime decode trigger { maxEntries: E + step, targetEntries: E }', async () => {
    const ids = engine.encode(text).slice(0, 420);
    const context = ids.slice(0, 256);
    const target = ids.slice(256);
    const step = 16;
    const session = engine.session('streaming-llm', { ratio: 0.5 });
    await session.prefill(context);
    await session.compress();
    const E = Math.max(...session.stats().entriesPerHead);
    expect(E).toBe(128);
    const got = await scoreWhileCompressing(session, target, E, step);
    expect(got.count).toBe(target.length);
    // a compression every step + 1 tokens, none after the last token
    expect(got.recompressions).toBe(Math.ceil(target.length / (step + 1)) - 1);
    expect(Math.max(...session.stats().entriesPerHead)).toBeLessThanOrEqual(E + step + 1);
    session.dispose();

    // the same, token by token through the runtime's own trigger
    const runtime = await import('@semanticache/runtime');
    const model = await runtime.loadModel(DEMO_MODEL_DIR);
    try {
      const s = model.createSession({
        policy: { name: 'streaming-llm', budget: { ratio: 0.5 } },
        compressTrigger: { maxEntries: E + step, targetEntries: E },
      });
      let logits = await s.prefill(context);
      let nll = 0;
      for (const id of target) {
        let max = -Infinity;
        for (const x of logits) max = Math.max(max, x);
        let sum = 0;
        for (const x of logits) sum += Math.exp(x - max);
        nll -= logits[id] - max - Math.log(sum);
        logits = await s.decodeStep(id);
      }
      expect(s.stats().compressions).toBe(1 + got.recompressions); // after the prompt, then as in the loop
      expect(got.nll / got.count).toBeCloseTo(nll / target.length, 3);
      s.dispose();
    } finally {
      await model.dispose();
    }
  });

  it('runs decode-ppl windows through every config and keeps per-window records', async () => {
    const controller = new AbortController();
    const r = await runEval(
      engine,
      readFileSync(HELD_OUT_PATH, 'utf8'),
      {
        tasks: ['decode-ppl'],
        policies: ['full', 'semanticache:paper', 'snapkv'],
        ratios: [0.5],
        context: 256,
        target: 8,
        decodeTarget: 96,
        decodeStep: 16,
        windows: 2,
        lengths: [],
        depths: [],
        cases: 1,
        seed: 0,
        queryAware: false,
        reference: 'snapkv',
      },
      { signal: controller.signal, onStart: () => {}, onStep: () => {} },
    );
    expect(r.perplexity).toEqual([]);
    const decode = r.decodePerplexity ?? [];
    expect(decode.map((p) => p.config.label)).toEqual(['full', 'semanticache:paper@0.5', 'snapkv@0.5']);
    for (const p of decode) {
      expect(p.perWindow).toHaveLength(2);
      expect(p.tokens).toBe(192);
      for (const w of p.perWindow ?? []) expect(w.recompressions).toBe(p.config.policy === 'full' ? 0 : 5);
    }
    expect(decode[1].perWindow?.[0].start).toBe(decode[2].perWindow?.[0].start);
    const tables = evalTables(r);
    expect(tables[0].columns).toEqual([
      'policy',
      'ratio',
      'kept',
      'decode ppl',
      'Δdecode ppl vs full',
      'Δdecode ppl SE',
    ]);
    expect(tables.find((t) => t.title?.startsWith('Paired comparison: decode ppl against snapkv'))?.rows).toHaveLength(
      1,
    );
  });
});

describe('an eval stopped by Ctrl-C', () => {
  let engine: Engine;
  withDemoEngine((loaded) => {
    engine = loaded;
  });
  const text = readFileSync(HELD_OUT_PATH, 'utf8');
  const settings: EvalSettings = {
    tasks: ['ppl', 'passkey'],
    policies: ['full', 'snapkv'],
    ratios: [0.5],
    context: 256,
    target: 8,
    windows: 4,
    lengths: [256],
    depths: [0, 1],
    cases: 2,
    seed: 0,
    queryAware: false,
    reference: 'snapkv',
  };
  /** Runs the grid, firing the abort signal (as SIGINT does) at the first step whose label starts with `at`. */
  const interruptedAt = async (at: string) => {
    const controller = new AbortController();
    const r = await runEval(engine, text, settings, {
      signal: controller.signal,
      onStart: () => {},
      onStep: (detail) => {
        if (detail.startsWith(at)) controller.abort();
      },
    });
    return { r, markdown: evalMarkdown(r) };
  };

  it('says per cell how many of the planned perplexity windows every config was scored on', async () => {
    const { r, markdown } = await interruptedAt('ppl window 3/4');
    expect(r.interrupted).toBe(true);
    expect(r.perplexity.map((p) => p.windows)).toEqual([2, 2]);
    expect(r.coverage).toEqual([
      { task: 'ppl', unit: 'windows', done: 2, planned: 4 },
      { task: 'passkey', contextTokens: 256, depth: 0, unit: 'cases', done: 0, planned: 2 },
      { task: 'passkey', contextTokens: 256, depth: 1, unit: 'cases', done: 0, planned: 2 },
    ]);
    expect(markdown).toContain('**interrupted, partial results**');
    expect(markdown).toContain('Measured before the interrupt');
    expect(markdown).toContain('- ppl (C=256, T=8): 2 of 4 windows\n');
    expect(markdown).toContain('- passkey 256 tok, depth 0: 0 of 2 cases\n');
    expect(markdown).toContain('- passkey 256 tok, depth 1: 0 of 2 cases\n');
  });

  it('says per retrieval cell how many of the planned cases every config answered', async () => {
    const { r, markdown } = await interruptedAt('passkey 256 tok, depth 0, case 2');
    expect(r.perplexity.map((p) => p.windows)).toEqual([4, 4]);
    expect(r.retrieval.map((c) => [c.config.label, c.depth, c.cases])).toEqual([
      ['full', 0, 1],
      ['snapkv@0.5', 0, 1],
    ]);
    expect(markdown).toContain('- ppl (C=256, T=8): 4 of 4 windows\n');
    expect(markdown).toContain('- passkey 256 tok, depth 0: 1 of 2 cases\n');
    expect(markdown).toContain('- passkey 256 tok, depth 1: 0 of 2 cases\n');
  });
});

/** A per-token NLL for each window, as records of 10 tokens. */
const windowsOf = (perToken: number[]) =>
  perToken.map((x, i) => ({ start: i * 100, nll: 10 * x, tokens: 10, kept: 0.5 }));

describe('paired statistics in the report', () => {
  const settings: EvalSettings = {
    tasks: ['ppl', 'passkey'],
    policies: ['full', 'semanticache', 'snapkv', 'semanticache:paper'],
    ratios: [0.5],
    context: 64,
    target: 10,
    windows: 6,
    lengths: [100, 200],
    depths: [0, 1],
    cases: 3,
    seed: 5,
    queryAware: false,
    reference: 'semanticache',
  };
  const configs = configsFor(settings.policies, settings.ratios);
  const perToken: Record<string, number[]> = {
    full: [2.0, 2.2, 2.1, 2.5, 1.9, 2.3],
    'semanticache@0.5': [2.1, 2.3, 2.2, 2.6, 2.0, 2.4],
    // worse than the reference in every window
    'snapkv@0.5': [2.4, 2.6, 2.5, 2.9, 2.2, 2.8],
    // the same as the reference
    'semanticache:paper@0.5': [2.1, 2.3, 2.2, 2.6, 2.0, 2.4],
  };
  const perplexity = configs.map((config) => {
    const perWindow = windowsOf(perToken[config.label]);
    const nll = perWindow.reduce((a, w) => a + w.nll, 0);
    return { config, windows: 6, tokens: 60, nll, ppl: Math.exp(nll / 60), keptFraction: 0.5, perWindow };
  });
  // snapkv fails every depth-1 case; everything else passes
  const retrieval: RetrievalResult[] = configs.flatMap((config: Config) =>
    [100, 200].flatMap((contextTokens) =>
      [0, 1].map((depth) => {
        const passed = !(config.policy === 'snapkv' && depth === 1);
        return {
          config,
          task: 'passkey' as const,
          contextTokens,
          depth,
          cases: 3,
          passed: passed ? 3 : 0,
          outcomes: [0, 1, 2].map((index) => ({ index, depth, passed })),
        };
      }),
    ),
  );
  const results: EvalResults = { model: 'm', settings, interrupted: false, perplexity, retrieval, retrievalKept: [] };

  it('gives Δppl vs full a paired bootstrap standard error over windows', () => {
    const [summary] = evalTables(results);
    const snap = summary.rows.find((r) => r[0] === 'snapkv') as (string | number | null)[];
    const expected = pairedPerplexityDifference(perplexity[2].perWindow, perplexity[0].perWindow, {
      seed: 5,
      resamples: 2000,
    });
    expect(snap[5]).toBe(expected.se);
    expect(expected.se).toBeGreaterThan(0);
    expect(summary.rows.find((r) => r[0] === 'semanticache:paper')?.[1]).toBe(0.5);
    expect(summary.rows[0][5]).toBeNull(); // full against itself
  });

  it('compares every other config with the reference at the same ratio, with CI, sign test and verdict', () => {
    const [ppl, passkey] = pairedTables(results);
    expect(ppl.title).toMatch(/^Paired comparison: ppl against semanticache/);
    expect(ppl.columns).toContain('Δppl other − ref (< 0: other better)');
    const row = (t: typeof ppl, other: string, cell: string) => {
      const r = t.rows.find((x) => x[3] === other && x[0] === cell);
      if (!r) throw new Error(`no row for ${other} ${cell}`);
      return Object.fromEntries(t.columns.map((c, i) => [c, r[i]]));
    };
    expect(ppl.rows.map((r) => r[3])).toEqual(['snapkv', 'semanticache:paper']);
    const snap = row(ppl, 'snapkv', 'all windows');
    expect(snap.n).toBe(6);
    expect(snap['Δppl other − ref (< 0: other better)']).toBeCloseTo(
      Math.exp(2.5666666666666664) - Math.exp(2.2666666666666666),
      6,
    );
    expect(snap['95% CI low']).toBeGreaterThan(0);
    expect(snap['reference better on']).toBe(6);
    expect(snap['other better on']).toBe(0);
    expect(snap['sign test p']).toBeCloseTo(2 / 64, 15);
    expect(snap.verdict).toBe('reference better');
    const paper = row(ppl, 'semanticache:paper', 'all windows');
    expect(paper['95% CI low']).toBe(0);
    expect(paper['95% CI high']).toBe(0);
    expect(paper['sign test p']).toBe(1);
    expect(paper.verdict).toBe('tie (within noise)');

    expect(passkey.columns).toContain('Δacc other − ref (> 0: other better)');
    const pooled = row(passkey, 'snapkv', 'all lengths');
    expect(pooled.n).toBe(12);
    expect(pooled['Δacc other − ref (> 0: other better)']).toBe(-0.5);
    expect(pooled['sign test p']).toBeCloseTo(2 / 64, 15);
    expect(pooled.verdict).toBe('reference better');
    const short = row(passkey, 'snapkv', '100 tok');
    expect(short.n).toBe(6);
    expect(short['sign test p']).toBeCloseTo(2 / 8, 15);
    expect(row(passkey, 'semanticache:paper', '200 tok').verdict).toBe('tie (within noise)');
    // deterministic: the same report twice
    expect(pairedTables(results)).toEqual(pairedTables(results));
  });

  it('compares against the full cache across ratios when it is the reference, and skips a missing reference', () => {
    const vsFull = pairedTables({ ...results, settings: { ...settings, reference: 'full' } });
    expect(vsFull[0].rows.map((r) => r[3])).toEqual(['semanticache', 'snapkv', 'semanticache:paper']);
    expect(pairedTables({ ...results, settings: { ...settings, reference: null } })).toEqual([]);
  });

  it('bins random-depth cases by the depth each one drew', () => {
    const random: EvalResults = {
      ...results,
      settings: { ...settings, depths: ['random'], lengths: [100] },
      retrieval: configs.map((config) => ({
        config,
        task: 'passkey' as const,
        contextTokens: 100,
        depth: 'random' as const,
        cases: 4,
        passed: 2,
        outcomes: [
          { index: 0, depth: 0.1, passed: true },
          { index: 1, depth: 0.2, passed: false },
          { index: 2, depth: 0.6, passed: true },
          { index: 3, depth: 1, passed: false },
        ],
      })),
    };
    const tables = evalTables(random);
    const binned = tables.find((t) => t.title?.includes('random-depth')) as (typeof tables)[number];
    expect(binned.columns).toEqual(['policy', 'ratio', '0–0.25)', '0.25–0.5)', '0.5–0.75)', '0.75–1]']);
    expect(binned.rows[0]).toEqual(['full', 0, 0.5, null, 1, 0]);
    expect(tables.find((t) => t.title === 'passkey accuracy by needle depth (all lengths)')?.columns).toEqual([
      'policy',
      'ratio',
      'depth random',
    ]);
  });
});

/** A session whose heads grow by what is scored and shrink to the budget on compress. */
class FakeSession implements Partial<EngineSession> {
  heads: Int32Array;
  blocks: number[] = [];
  budgets: Budget[] = [];
  constructor(entries: number) {
    this.heads = Int32Array.of(entries, entries - 3);
  }
  async score(ids: readonly number[]) {
    this.blocks.push(ids.length);
    for (let h = 0; h < this.heads.length; h++) this.heads[h] += ids.length;
    return { nll: ids.length * 2, count: ids.length };
  }
  async compress(budget?: Budget) {
    if (budget) this.budgets.push(budget);
    for (let h = 0; h < this.heads.length; h++)
      this.heads[h] = Math.min(this.heads[h], (budget as { maxEntries: number }).maxEntries);
    return undefined;
  }
  stats(): CacheStats {
    return { tokens: 0, entries: 0, fullEntries: 0, entriesPerHead: this.heads, bytes: 0, fullBytes: 0 };
  }
}

describe('decode-ppl scoring', () => {
  it('compresses back to E right after a head passes E + step, as the decode trigger does', async () => {
    const fake = new FakeSession(100);
    const ids = Array.from({ length: 50 }, (_, i) => i);
    const r = await scoreWhileCompressing(fake as unknown as EngineSession, ids, 100, 10);
    // 11 tokens take the fullest head from 100 to 111 > 110; the last block ends the text without a compression
    expect(fake.blocks).toEqual([11, 11, 11, 11, 6]);
    expect(fake.budgets).toEqual([{ maxEntries: 100 }, { maxEntries: 100 }, { maxEntries: 100 }, { maxEntries: 100 }]);
    expect(r).toEqual({ nll: 100, count: 50, recompressions: 4 });
  });

  it('scores the full cache in one go', async () => {
    const fake = new FakeSession(100);
    const r = await scoreWhileCompressing(fake as unknown as EngineSession, [1, 2, 3], undefined, 10);
    expect(fake.blocks).toEqual([3]);
    expect(r.recompressions).toBe(0);
  });
});
