/**
 * A plain JavaScript statement of what mergeClusters computes, one cluster and one dimension at a time, for tests to
 * compare against bit for bit. It assumes valid, finite input (no checks).
 */
import type { Cores, MergeInput } from './merge.js';

export function referenceMerge(input: MergeInput): Cores {
  const { keys, values, sizes, positions, n, d, assignment, numClusters: k, weights } = input;
  const size = (i: number) => (sizes === undefined ? 1 : sizes[i]);
  const position = (i: number) => (positions === undefined ? i : positions[i]);

  const members: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < n; i++) members[assignment[i]].push(i);

  const out: Cores = {
    keys: new Float32Array(k * d),
    values: new Float32Array(k * d),
    sizes: new Float32Array(k),
    positions: new Float64Array(k),
    weights: new Float64Array(k),
  };
  for (let c = 0; c < k; c++) {
    const rows = members[c];
    if (rows.length === 1) {
      // a single member is its own core, bit for bit
      const i = rows[0];
      out.keys.set(keys.subarray(i * d, (i + 1) * d), c * d);
      out.values.set(values.subarray(i * d, (i + 1) * d), c * d);
      out.sizes[c] = size(i);
      out.positions[c] = position(i);
      out.weights[c] = weights === undefined ? size(i) : weights[i];
      continue;
    }
    let sizeSum = 0;
    let positionSum = 0;
    let givenWeightSum = 0;
    for (const i of rows) {
      sizeSum += size(i);
      positionSum += size(i) * position(i);
      if (weights !== undefined) givenWeightSum += weights[i];
    }
    // a cluster whose given weights sum to 0 is weighted by its sizes
    const useWeights = givenWeightSum > 0;
    const weight = (i: number) => (useWeights ? weights![i] : size(i));
    const inv = 1 / (useWeights ? givenWeightSum : sizeSum);
    for (const [from, to] of [
      [keys, out.keys],
      [values, out.values],
    ]) {
      for (let j = 0; j < d; j++) {
        let sum = weight(rows[0]) * from[rows[0] * d + j];
        for (let t = 1; t < rows.length; t++) sum += weight(rows[t]) * from[rows[t] * d + j];
        to[c * d + j] = sum * inv;
      }
    }
    out.sizes[c] = sizeSum;
    out.positions[c] = input.positionMode === 'first' ? position(rows[0]) : positionSum / sizeSum;
    out.weights[c] = weights === undefined ? sizeSum : givenWeightSum;
  }
  return out;
}
