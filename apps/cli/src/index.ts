export type { CliContext, OutStream } from './context';
export { type Budget, type CacheStats, type Engine, type EngineSession, POLICIES, type PolicyName } from './engine';
export { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError } from './errors';
export { type InspectPage, type LayerCompression, renderInspectHtml } from './html';
export { COMMANDS, main, mainHelp, VERSION } from './main';
export { type ModelLocation, resolveModelLocation } from './model-path';
export { svgToPng } from './png';
export { Progress } from './progress';
export { mixSeed, Rng } from './rng';
export { loadRuntimeEngine } from './runtime-engine';
export { type LineChart, renderLineChart, type Series } from './svg';
export { type Table, toMarkdown, toRecords } from './table';
export {
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
  type RetrievalCase,
  retrievalCase,
  type TextCodec,
} from './tasks';
