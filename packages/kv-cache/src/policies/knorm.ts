import { type BudgetedOptions, scorerPolicy } from './policy.js';

/**
 * Key norm (kvpress's KnormPress): per head, the entries whose keys have the smallest L2 norm, which draw the most
 * attention (Devoto et al. 2024). Reads no attention mass.
 */
export const knorm = scorerPolicy({
  name: 'knorm',
  knobs: [],
  needs: { window: false, accumulated: false, tokens: false },
  check: () => undefined,
  scores: (cache, _options: BudgetedOptions) => (layer, head) => {
    const keys = cache.readFloat32(layer, head, 'keys');
    const d = cache.headDim;
    const scores = new Float32Array(keys.length / d);
    for (let i = 0; i < scores.length; i++) {
      let sum = 0;
      for (let j = i * d; j < (i + 1) * d; j++) sum += keys[j] * keys[j];
      scores[i] = -Math.sqrt(sum);
    }
    return scores;
  },
});
