import { identityRemap, keepEntries } from './head-writer.js';
import { type BudgetedOptions, type PolicyDefinition, READS_NOTHING } from './policy.js';

/** StreamingLLM: the sinks and the most recent compressible entries (a sliding window). */
export const streamingLlm: PolicyDefinition<'streaming-llm', BudgetedOptions, void> = {
  name: 'streaming-llm',
  knobs: [],
  minKeepMiddle: 0,
  usesBudget: () => true,
  needs: () => READS_NOTHING,
  check: () => undefined,
  compressor: (cache) => (layer, plans) =>
    plans.map((plan, h) => {
      if (plan.keepMiddle < 0) return identityRemap(plan.length);
      const kept = new Int32Array(plan.keepMiddle);
      for (let i = 0; i < kept.length; i++) kept[i] = plan.windowStart - plan.keepMiddle + i;
      return keepEntries(cache, layer, h, plan, kept);
    }),
};
