import { type GscOptions, type GscResult, gscCluster } from '@semanticache/gsc-cluster';

const options: GscOptions = { threshold: 0.9, seedOrder: 'position', compareTo: 'seed' };
const r: GscResult = gscCluster(new Float32Array(8), 4, 2, Uint32Array.from([0, 4]), options);
export const clusters: number = r.numClusters;
export const assignment: Int32Array = r.assignment;
