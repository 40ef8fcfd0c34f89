import {
  type Engine,
  type EvalResults,
  type EvalSettings,
  evalMarkdown,
  loadRuntimeEngine,
  runEval,
  type Table,
  toMarkdown,
} from '@semanticache/eval';

const settings: EvalSettings = {
  tasks: ['ppl', 'passkey'],
  policies: ['full', 'semanticache'],
  ratios: [0.75],
  context: 2048,
  target: 256,
  windows: 4,
  lengths: [1024],
  depths: [0, 'random'],
  cases: 2,
  seed: 0,
  queryAware: false,
};
export const evaluate = async (file: string, tokenizer: string, text: string): Promise<string> => {
  const engine: Engine = await loadRuntimeEngine({ format: 'llama2c', file, tokenizer, label: 'model' });
  const results: EvalResults = await runEval(engine, text, settings, {
    signal: new AbortController().signal,
    onStart: () => {},
    onStep: () => {},
  });
  await engine.dispose();
  return evalMarkdown(results);
};
const table: Table = { columns: ['a'], rows: [[1]] };
export const md: string = toMarkdown(table);
