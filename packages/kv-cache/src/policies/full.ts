import type { Budget, ProtectionOptions } from '../plan.js';
import { identityRemap } from './head-writer.js';
import { type PolicyDefinition, READS_NOTHING } from './policy.js';

/** The uncompressed reference: a budget given to it is checked but never applied. */
export const full: PolicyDefinition<'full', ProtectionOptions & { budget?: Budget }, void> = {
  name: 'full',
  knobs: [],
  minKeepMiddle: 0,
  usesBudget: () => false,
  needs: () => READS_NOTHING,
  check: () => undefined,
  compressor: () => (_, plans) => plans.map((p) => identityRemap(p.length)),
};
