import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configsFor, type EvalResults, evalCharts, evalTables, windowStarts } from './commands/eval';
import type { Engine, PolicyName } from './engine';
import { encodeLong } from './long-text';
import { loadRuntimeEngine } from './runtime-engine';
import { renderLineChart } from './svg';
import { toMarkdown } from './table';
import { packageRoot, repoRoot } from './test-support';

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
    expect(summary.columns).toEqual(['policy', 'ratio', 'kept', 'ppl', 'Δppl vs full', 'passkey acc']);
    expect(summary.rows[0]).toEqual(['full', 0, 1, Math.exp(3), 0, 1]);
    expect(summary.rows[3][0]).toBe('snapkv');
    expect(summary.rows[3][4]).toBeCloseTo(Math.exp(3.3) - Math.exp(3), 10);
    expect(summary.rows[3][5]).toBe(0.5);
    expect(byLength.columns).toEqual(['policy', 'ratio', '100 tok', '200 tok']);
    expect(byDepth.rows[3]).toEqual(['snapkv', 0.5, 1, 0]);
    expect(toMarkdown(summary)).toContain('| semanticache |  0.75 |');
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
  const text = readFileSync(path.join(packageRoot, 'assets', 'demo-text.txt'), 'utf8');

  beforeAll(async () => {
    engine = await loadRuntimeEngine({
      format: 'hf',
      dir: path.join(repoRoot, 'packages', 'model-demo', 'weights'),
      label: 'demo',
    });
  }, 60_000);
  afterAll(async () => {
    await engine?.dispose();
  });

  it('encodes a book piece by piece into exactly the ids of encoding it whole', () => {
    const book = readFileSync(path.join(packageRoot, 'assets', 'val-slice.txt'), 'utf8');
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
});
