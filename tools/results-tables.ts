// The perplexity and accuracy tables of docs/results.md, from `semanticache eval` runs.
//   pnpm exec tsx tools/results-tables.ts ppl DIR…        policies × (context, ratio): ppl (Δ vs full)
//   pnpm exec tsx tools/results-tables.ts decode DIR…     the same for decode-ppl
//   pnpm exec tsx tools/results-tables.ts retrieval DIR…  per task, policies × (length, ratio): accuracy
// Runs of the same windows or cases are read as one (eval-runs.ts); a cell no run has is '—'.
import { type Config, loadRuns, nameOf } from './eval-runs.js';

const [kind, ...dirs] = process.argv.slice(2);
if (!['ppl', 'decode', 'retrieval'].includes(kind) || dirs.length === 0) {
  console.error('usage: tsx tools/results-tables.ts ppl|decode|retrieval DIR [DIR …]');
  process.exit(2);
}
const runs = loadRuns(dirs);
const table = (header: string[], rows: string[][]) =>
  [
    `| ${header.join(' | ')} |`,
    `| --- | ${header
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  ]
    .concat(rows.map((r) => `| ${r.join(' | ')} |`))
    .join('\n');
// semanticache and its presets first, then the baselines, each in the order the runs list them
const policiesOf = (configs: Config[]) => {
  const names = [...new Set(configs.filter((c) => c.policy !== 'full').map(nameOf))];
  const rank = (n: string) => (n === 'semanticache' ? 0 : n.startsWith('semanticache:') ? 1 : 2);
  return names.sort((a, b) => rank(a) - rank(b));
};

if (kind === 'ppl' || kind === 'decode') {
  const rowsOf = (r: EvalJson) => (kind === 'ppl' ? r.perplexity : (r.decodePerplexity ?? []));
  const cells = runs.flatMap((r) =>
    [...new Set(rowsOf(r).map((x) => x.config.ratio))]
      .filter((x) => x > 0)
      .sort()
      .map((ratio) => ({ run: r, ratio })),
  );
  const label = (c: { run: EvalJson; ratio: number }) =>
    `${kind === 'ppl' ? `${c.run.settings.context / 1024}K` : 'decode'} ${c.ratio}`;
  const fmt = (x: number) => x.toFixed(2);
  const rows = policiesOf(runs.flatMap((r) => rowsOf(r).map((x) => x.config))).map((policy) => [
    policy,
    ...cells.map(({ run, ratio }) => {
      const full = rowsOf(run).find((x) => x.config.policy === 'full');
      const row = rowsOf(run).find((x) => nameOf(x.config) === policy && x.config.ratio === ratio);
      if (!row) return '—';
      const delta = full ? row.ppl - full.ppl : Number.NaN;
      return `${fmt(row.ppl)} (${delta >= 0 ? '+' : ''}${fmt(delta)})`;
    }),
  ]);
  console.log(table(['policy', ...cells.map(label)], rows));
  const fulls = runs
    .map((r) => {
      const full = rowsOf(r).find((x) => x.config.policy === 'full');
      return full ? `${kind === 'ppl' ? `${r.settings.context / 1024}K` : 'decode'}: ${fmt(full.ppl)}` : undefined;
    })
    .filter(Boolean);
  console.log(`\nfull: ${fulls.join(' · ')}; windows per run: ${runs.map((r) => rowsOf(r)[0]?.windows).join(', ')}`);
} else {
  const all = runs.flatMap((r) => r.retrieval);
  for (const task of [...new Set(all.map((x) => x.task))]) {
    const rows = all.filter((x) => x.task === task);
    const cells = [
      ...new Set(rows.filter((x) => x.config.ratio > 0).map((x) => `${x.contextTokens}|${x.config.ratio}`)),
    ]
      .map((k) => k.split('|').map(Number))
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const cases = [...new Set(rows.map((x) => x.cases))].sort((a, b) => a - b);
    const policies = ['full', ...policiesOf(rows.map((x) => x.config))];
    const body = policies.map((policy) => [
      policy,
      ...cells.map(([length, ratio]) => {
        const row = rows.find(
          (x) =>
            nameOf(x.config) === policy &&
            x.contextTokens === length &&
            (policy === 'full' ? true : x.config.ratio === ratio),
        );
        return row ? (row.passed / row.cases).toFixed(2) : '—';
      }),
    ]);
    console.log(`**${task}** (cases per cell: ${cases.join(', ')})\n`);
    console.log(table(['policy', ...cells.map(([l, r]) => `${l} tok @${r}`)], body));
    console.log();
  }
}
