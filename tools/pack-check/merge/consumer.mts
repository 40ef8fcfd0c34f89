import { type Cores, logSizes, type MergeInput, mergeClusters } from '@semanticache/merge';

const input: MergeInput = {
  keys: new Float32Array(4),
  values: new Float32Array(4),
  n: 2,
  d: 2,
  assignment: Int32Array.from([0, 0]),
  numClusters: 1,
  positionMode: 'mean',
};
const cores: Cores = mergeClusters(input);
export const bias: Float32Array = logSizes(cores.sizes);
