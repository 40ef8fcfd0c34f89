export { type Cores, logSizes, type MergeInput, mergeClusters, type PositionMode } from './merge.js';
