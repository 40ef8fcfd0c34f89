export {
  CENTROID_TOLERANCE,
  type CompareTo,
  DEFAULT_MAX_SEARCH_STEPS,
  DEFAULT_THRESHOLD,
  type GscOptions,
  type GscResult,
  gscCluster,
  minClusters,
  type SeedOrder,
} from './gsc.js';
