export {
  type BenchHooks,
  type BenchRow,
  type BenchSettings,
  benchCharts,
  benchTable,
  median,
  runBench,
  warmUp,
} from './bench.js';
export {
  type Budget,
  budgetLabel,
  type CacheStats,
  type CompressionMap,
  checkContext,
  type Engine,
  type EngineOptions,
  type EngineSession,
  type GeneratedToken,
  type ModelLocation,
  type PolicyKnobs,
  type SamplingOptions,
  type StepProgress,
} from './engine.js';
export { type SettingName, SettingsError } from './errors.js';
export { coverageMarkdown, evalCharts, evalMarkdown, evalTables, pairedTables } from './eval-report.js';
export {
  type CaseOutcome,
  type Config,
  type CoverageCell,
  configLabel,
  configName,
  configsFor,
  type DepthSpec,
  EVAL_TASKS,
  type EvalHooks,
  type EvalResults,
  type EvalSettings,
  type EvalTask,
  isPplTask,
  isRetrievalTask,
  type PerplexityResult,
  PPL_TASKS,
  type PplTask,
  type RetrievalResult,
  runEval,
  scoreWhileCompressing,
  type WindowRecord,
  windowStarts,
} from './harness.js';
export {
  clustersFromTrace,
  DROPPED,
  type InspectPage,
  type LayerCompression,
  PROTECTED,
  renderInspectHtml,
} from './html.js';
export { encodeLong, splitForEncoding } from './long-text.js';
export { type PngResult, svgToPng } from './png.js';
export {
  DEFAULT_PRESET,
  type PolicySpec,
  parsePolicySpec,
  policySpecNames,
  presetField,
  specKnobs,
  specName,
} from './policy-spec.js';
export { type ReportFiles, writeReport } from './report.js';
export { mixSeed, Rng } from './rng.js';
export { loadRuntimeEngine } from './runtime-engine.js';
export {
  type BootstrapOptions,
  binomialSE,
  bootstrap,
  DEFAULT_RESAMPLES,
  type NllUnit,
  type PairedEstimate,
  pairedMeanDifference,
  pairedPerplexityDifference,
  pairWins,
  perplexity,
  signTest,
  type Verdict,
  verdict,
} from './stats.js';
export { type LineChart, renderLineChart, type Series } from './svg.js';
export { type Table, toMarkdown, toRecords } from './table.js';
export {
  type CaseRequest,
  CODE_NAMES,
  codeAnswer,
  codeFact,
  codeQuestion,
  codeRecallCase,
  FillerSource,
  isCorrect,
  PASSKEY_HEADER,
  PASSKEY_QUESTION,
  passkeyAnswer,
  passkeyCase,
  passkeyNeedle,
  RETRIEVAL_TASKS,
  type RetrievalCase,
  type RetrievalTaskName,
  randomDepth,
  retrievalCase,
  type TextCodec,
} from './tasks.js';
