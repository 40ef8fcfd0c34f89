// The seeded generator of tests and benchmarks is the one the published packages inline.
export { rng } from '@semanticache/internal';
