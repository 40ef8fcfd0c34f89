import { checkImportance, type Importance } from '../plan.js';
import { type BudgetedOptions, scorerPolicy } from './policy.js';

export type H2oOptions = BudgetedOptions & { accumulatedImportance: Importance };

/** H2O: per head, the heavy hitters: the entries with the most attention mass from every query so far. */
export const h2o = scorerPolicy({
  name: 'h2o',
  knobs: [],
  needs: { window: false, accumulated: true, tokens: false },
  check: () => undefined,
  scores(cache, options: H2oOptions) {
    const importance = checkImportance('accumulatedImportance', options.accumulatedImportance, cache, 'h2o');
    return (layer, head) => importance[layer][head];
  },
});
