import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { DelimiterLevel, DelimiterSet } from '@semanticache/chunker';
import { type AttentionKernel, loadNativeAttention, referenceAttention } from './attention.js';
import { type ModelConfig, parseHfConfig } from './config.js';
import { DisposedError, ModelLoadError } from './errors.js';
import { graphsInWorkers } from './graph-stream.js';
import { Llama2cTokenizer, loadLlama2cCheckpoint } from './llama2c.js';
import { Session, type SessionOptions } from './session.js';
import { HfTextTokenizer, type TextTokenizer } from './tokenizer.js';
import { Transformer, type TransformerOptions } from './transformer.js';
import { type ModelWeights, openHfWeights, type StreamedWeights } from './weights.js';

/** What `loadModel` takes: the transformer's options (threads, weight format, fusing) and these. */
export interface LoadModelOptions extends TransformerOptions {
  /** llama2.c checkpoints: the `tokenizer.bin` to use (default: `tok<vocab>.bin` or `tokenizer.bin` next to it). */
  tokenizerPath?: string;
  /** `native` (the proportional-attention addon, default) or `reference` (plain TypeScript, slow, exact). */
  attention?: 'native' | 'reference';
  /**
   * HF checkpoints: worker threads that read, widen and quantize the weights into graphs while this thread hands
   * finished ones to ORT (whose session creation blocks the thread that calls it). 0 builds them in this thread.
   * Default: one per core, up to 4, for checkpoints of 64 MiB or more; 0 below that, where starting a thread costs
   * more than it saves.
   */
  loadWorkers?: number;
}

/** Checkpoints at least this large are built in worker threads by default (see `loadWorkers`). */
const LOAD_WORKERS_MIN_BYTES = 64 * 1024 * 1024;

function loadWorkersFor(requested: number | undefined, storedBytes: number): number {
  if (requested !== undefined) return requested;
  return storedBytes >= LOAD_WORKERS_MIN_BYTES ? Math.min(4, availableParallelism()) : 0;
}

function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ModelLoadError(`cannot read JSON: ${(cause as Error).message}`, { file, cause });
  }
}

/** A loaded checkpoint: config, tokenizer and the ORT sessions; sessions hold the per-conversation caches. */
export class Model {
  private disposed = false;

  /** @internal use {@link loadModel} */
  constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer | undefined,
    readonly source: string,
    readonly attentionBackend: 'native' | 'reference',
    /** @internal */ readonly transformer: Transformer,
    /** @internal */ readonly kernel: AttentionKernel,
  ) {}

  /** The tokenizer's delimiter set at `level` (what the semanticache policy chunks by). */
  delimiters(level: DelimiterLevel = 'sentence'): DelimiterSet {
    if (!this.tokenizer) throw new TypeError('delimiters: this model has no tokenizer; pass policy.options.delimiters');
    return this.tokenizer.delimiters(level);
  }

  createSession(options: SessionOptions = {}): Session {
    this.assertLive();
    return new Session(this, options);
  }

  /** @internal */
  assertLive(): void {
    if (this.disposed) throw new DisposedError('the model has been disposed');
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.transformer.dispose();
  }
}

/**
 * Loads an HF checkpoint folder (config.json, model.safetensors or sharded + index, tokenizer.json) or a llama2.c
 * `.bin` file (with its `tok*.bin` tokenizer).
 */
export async function loadModel(pathOrDir: string, options: LoadModelOptions = {}): Promise<Model> {
  if (typeof pathOrDir !== 'string' || pathOrDir.length === 0) {
    throw new TypeError('pathOrDir must be a non-empty string');
  }
  const attention = options.attention ?? 'native';
  if (attention !== 'native' && attention !== 'reference') {
    throw new TypeError(`attention: expected 'native' or 'reference', got ${String(attention)}`);
  }
  const { loadWorkers } = options;
  if (loadWorkers !== undefined && !(Number.isInteger(loadWorkers) && loadWorkers >= 0)) {
    throw new RangeError(`loadWorkers: expected an integer ≥ 0, got ${String(loadWorkers)}`);
  }
  if (!existsSync(pathOrDir)) throw new ModelLoadError('no such file or directory', { file: pathOrDir });
  const { config, weights, tokenizer } = openCheckpoint(pathOrDir, options);
  const streamed = weights as Partial<StreamedWeights>;
  try {
    if (tokenizer && tokenizer.vocabSize > config.vocabSize) {
      throw new ModelLoadError(
        `tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary is ${config.vocabSize}`,
        { file: pathOrDir },
      );
    }
    const kernel = attention === 'native' ? await loadNativeAttention() : referenceAttention;
    const workers = streamed.storedBytes === undefined ? 0 : loadWorkersFor(loadWorkers, streamed.storedBytes);
    const transformer = await Transformer.create(
      config,
      weights,
      options,
      workers > 0 ? (graphOptions) => graphsInWorkers(pathOrDir, config, graphOptions, workers) : undefined,
    );
    return new Model(config, tokenizer, pathOrDir, attention, transformer, kernel);
  } finally {
    streamed.close?.();
  }
}

/** A checkpoint's config, tokenizer and weights: an HF folder's streamed (read while the graphs are built). */
function openCheckpoint(
  pathOrDir: string,
  options: LoadModelOptions,
): { config: ModelConfig; weights: ModelWeights | StreamedWeights; tokenizer: TextTokenizer | undefined } {
  if (statSync(pathOrDir).isDirectory()) {
    const configPath = path.join(pathOrDir, 'config.json');
    if (!existsSync(configPath)) throw new ModelLoadError('config.json not found', { file: configPath });
    const genPath = path.join(pathOrDir, 'generation_config.json');
    const config = parseHfConfig(
      readJsonFile(configPath),
      configPath,
      existsSync(genPath) ? readJsonFile(genPath) : undefined,
    );
    // tensor names and shapes are checked against the config here, before anything heavy
    const weights = openHfWeights(pathOrDir, config);
    try {
      const tokPath = path.join(pathOrDir, 'tokenizer.json');
      let tokenizer: TextTokenizer | undefined;
      if (existsSync(tokPath)) {
        const tokConfigPath = path.join(pathOrDir, 'tokenizer_config.json');
        tokenizer = HfTextTokenizer.fromFiles(tokPath, existsSync(tokConfigPath) ? tokConfigPath : undefined);
      }
      return { config, weights, tokenizer };
    } catch (err) {
      weights.close();
      throw err;
    }
  }
  if (pathOrDir.endsWith('.bin')) {
    const { config, weights } = loadLlama2cCheckpoint(pathOrDir);
    const dir = path.dirname(pathOrDir);
    const tokPath =
      options.tokenizerPath ??
      [`tok${config.vocabSize}.bin`, 'tokenizer.bin'].map((f) => path.join(dir, f)).find((f) => existsSync(f));
    return { config, weights, tokenizer: tokPath ? new Llama2cTokenizer(tokPath, config.vocabSize) : undefined };
  }
  throw new ModelLoadError('expected an HF checkpoint folder or a llama2.c .bin file', { file: pathOrDir });
}
