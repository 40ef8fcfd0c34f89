// Win / tie / loss of one policy against the best baseline in every cell of `semanticache eval` runs, paired.
//   pnpm exec tsx tools/eval-cells.ts [--reference semanticache] DIR [DIR …]   (each DIR holds an eval.json)
// A cell is (task, context length, ratio, query-aware or not); runs of the same windows or cases are read as one
// (eval-runs.ts). Perplexity pairs on the windows every config of the cell has, retrieval on the cases every config
// of the cell answered. The baselines are the configs of other policies (not semanticache presets) at the cell's
// ratio; the best one is the best point estimate. The difference to it is paired with a 95 % bootstrap interval (2000
// resamples, seed 0) and an exact sign test; a verdict is 'win' or 'loss' only when the interval excludes 0. The
// reference's presets are listed beside it.
import {
  type NllUnit,
  pairedMeanDifference,
  pairedPerplexityDifference,
  perplexity,
  signTest,
} from '../packages/eval/src/stats.js';
import { type Config, loadRuns, nameOf, type PplRow, type RetrievalRow } from './eval-runs.js';

const args = process.argv.slice(2);
let reference = 'semanticache';
const dirs: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--reference') reference = args[++i];
  else dirs.push(args[i]);
}
if (dirs.length === 0) {
  console.error('usage: tsx tools/eval-cells.ts [--reference POLICY] DIR [DIR …]');
  process.exit(2);
}

const isReference = (c: Config) => nameOf(c) === reference;
const isBaseline = (c: Config) => c.policy !== 'semanticache' && c.policy !== 'full' && c.ratio > 0;
const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const verdictOf = (lo: number, hi: number, betterWhenNegative: boolean) => {
  if (lo <= 0 && hi >= 0) return 'tie';
  return hi < 0 === betterWhenNegative ? '**win**' : 'loss';
};

const rows: string[] = [];
rows.push(
  '| cell | ratio | reference | presets beside it | best baseline | Δ reference − best [95 % CI] | sign test p | verdict | vs each baseline (win/tie/loss) |',
);
rows.push('| --- | ---: | ---: | --- | --- | --- | ---: | --- | --- |');

for (const r of loadRuns(dirs)) {
  const mode = r.settings.queryAware ? 'query-aware' : 'query-agnostic';
  for (const [kind, table] of [
    ['ppl', r.perplexity],
    ['decode-ppl', r.decodePerplexity ?? []],
  ] as const) {
    const ratios = [...new Set(table.map((x) => x.config.ratio))].filter((x) => x > 0).sort();
    for (const ratio of ratios) {
      const at = table.filter((x) => x.config.ratio === ratio);
      const ref = at.find((x) => isReference(x.config));
      const baselines = at.filter((x) => isBaseline(x.config));
      if (!ref || baselines.length === 0) continue;
      // windows of the same start, in start order
      const starts = [...new Set(at.flatMap((x) => x.perWindow.map((w) => w.start)))]
        .filter((st) => at.every((x) => x.perWindow.some((w) => w.start === st)))
        .sort((a, b) => a - b);
      const units = (x: PplRow): NllUnit[] =>
        starts.map((st) => {
          const w = x.perWindow.find((v) => v.start === st) as PplRow['perWindow'][number];
          return { nll: w.nll, tokens: w.tokens };
        });
      const best = baselines.reduce((a, b) => (perplexity(units(b)) < perplexity(units(a)) ? b : a));
      const d = pairedPerplexityDifference(units(ref), units(best));
      let wins = 0;
      let losses = 0;
      units(ref).forEach((u, i) => {
        const v = units(best)[i];
        const diff = u.nll / u.tokens - v.nll / v.tokens;
        if (diff < 0) wins++;
        else if (diff > 0) losses++;
      });
      const tally = [0, 0, 0];
      for (const b of baselines) {
        const e = pairedPerplexityDifference(units(ref), units(b));
        tally[e.hi < 0 ? 0 : e.lo > 0 ? 2 : 1]++;
      }
      const presets = at
        .filter((x) => x.config.policy === 'semanticache' && !isReference(x.config))
        .map((x) => `${nameOf(x.config)} ${fmt(perplexity(units(x)))}`)
        .join(', ');
      rows.push(
        `| ${kind} C=${kind === 'ppl' ? r.settings.context : r.settings.context} (${units(ref).length} windows) | ${ratio} | ` +
          `${fmt(perplexity(units(ref)))} | ${presets} | ${nameOf(best.config)} ${fmt(perplexity(units(best)))} | ` +
          `${fmt(d.estimate)} [${fmt(d.lo)}, ${fmt(d.hi)}] | ${fmt(signTest(wins, losses), 3)} | ` +
          `${verdictOf(d.lo, d.hi, true)} | ${tally.join('/')} |`,
      );
    }
  }
  const tasks = [...new Set(r.retrieval.map((x) => x.task))];
  const lengths = [...new Set(r.retrieval.map((x) => x.contextTokens))].sort((a, b) => a - b);
  const ratios = [...new Set(r.retrieval.map((x) => x.config.ratio))].filter((x) => x > 0).sort();
  for (const task of tasks) {
    for (const length of lengths) {
      for (const ratio of ratios) {
        const cellsOf = (pick: (c: Config) => boolean) =>
          r.retrieval.filter(
            (x) => x.task === task && x.contextTokens === length && x.config.ratio === ratio && pick(x.config),
          );
        const [ref] = cellsOf(isReference);
        const baselines = cellsOf(isBaseline);
        if (!ref || baselines.length === 0) continue;
        // the case indices every config of the cell (presets beside the reference included) answered
        const answered = cellsOf((c) => c.ratio > 0 && !isReference(c)).map(
          (x) => new Set(x.outcomes.map((o) => o.index)),
        );
        const indices = ref.outcomes
          .map((o) => o.index)
          .filter((i) => answered.every((set) => set.has(i)))
          .sort((a, b) => a - b);
        const passes = (x: RetrievalRow) =>
          Float64Array.from(indices, (i) => (x.outcomes.find((o) => o.index === i)?.passed ? 1 : 0));
        const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
        const best = baselines.reduce((a, b) => (mean(passes(b)) > mean(passes(a)) ? b : a));
        const a = passes(ref);
        const b = passes(best);
        const d = pairedMeanDifference(a, b);
        let wins = 0;
        let losses = 0;
        a.forEach((x, i) => {
          if (x > b[i]) wins++;
          else if (x < b[i]) losses++;
        });
        const tally = [0, 0, 0];
        for (const o of baselines) {
          const e = pairedMeanDifference(a, passes(o));
          tally[e.lo > 0 ? 0 : e.hi < 0 ? 2 : 1]++;
        }
        const presets = cellsOf((c) => c.policy === 'semanticache' && !isReference(c))
          .map((x) => `${nameOf(x.config)} ${fmt(mean(passes(x)))}`)
          .join(', ');
        rows.push(
          `| ${task} ${length} tok, ${mode} (${a.length} cases) | ${ratio} | ${fmt(mean(a))} | ${presets} | ` +
            `${nameOf(best.config)} ${fmt(mean(b))} | ${fmt(d.estimate)} [${fmt(d.lo)}, ${fmt(d.hi)}] | ` +
            `${fmt(signTest(wins, losses), 3)} | ${verdictOf(d.lo, d.hi, false)} | ${tally.join('/')} |`,
        );
      }
    }
  }
}
console.log(rows.join('\n'));
