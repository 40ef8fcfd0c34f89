import { checkImportance, type Importance } from '../plan.js';
import { type BudgetedOptions, scorerPolicy } from './policy.js';
import { checkPooling, POOLING_KEYS, type PooledScoreOptions, poolScores } from './pooling.js';

export type SnapkvOptions = BudgetedOptions & PooledScoreOptions & { windowImportance: Importance };

/** SnapKV: per head, the entries with the most pooled attention mass from the observation window's queries. */
export const snapkv = scorerPolicy({
  name: 'snapkv',
  knobs: POOLING_KEYS,
  needs: { window: true, accumulated: false, tokens: false },
  check: (options: Partial<SnapkvOptions>) => checkPooling(options),
  scores(cache, options: SnapkvOptions, { pooling, size }) {
    const importance = checkImportance('windowImportance', options.windowImportance, cache, 'snapkv');
    return (layer, head) => poolScores(importance[layer][head], pooling, size);
  },
});
