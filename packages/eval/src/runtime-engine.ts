import type { DelimiterSet } from '@semanticache/chunker';
import { type KVDtype, policyUsesBudget } from '@semanticache/kv-cache';
import type {
  Budget,
  CacheStats,
  CompressionMap,
  Engine,
  EngineOptions,
  EngineSession,
  GeneratedToken,
  ModelLocation,
  PolicyKnobs,
  PolicyName,
  SamplingOptions,
  StepProgress,
} from './engine.js';

/** Prefill is fed in blocks of this many tokens so progress can be shown and an abort honoured between blocks. */
const PREFILL_STEP = 512;

type Runtime = typeof import('@semanticache/runtime');
type RuntimeModel = Awaited<ReturnType<Runtime['loadModel']>>;
type RuntimeSession = ReturnType<RuntimeModel['createSession']>;
type RuntimeSessionOptions = NonNullable<Parameters<RuntimeModel['createSession']>[0]>;

function sessionOptions(
  policy: PolicyName,
  budget: Budget,
  knobs: PolicyKnobs,
  kvDtype: KVDtype,
): RuntimeSessionOptions {
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(knobs)) if (v !== undefined) options[k] = v;
  const withBudget = policyUsesBudget(policy, options);
  return {
    policy: { name: policy, ...(withBudget ? { budget } : {}), options } as RuntimeSessionOptions['policy'],
    compressTrigger: 'manual',
    kvDtype,
  };
}

class RuntimeEngineSession implements EngineSession {
  constructor(
    private readonly model: RuntimeModel,
    private readonly session: RuntimeSession,
    private readonly policy: PolicyName,
    private readonly kvDtype: KVDtype,
  ) {}

  async prefill(ids: readonly number[], options: StepProgress = {}): Promise<void> {
    for (let at = 0; at < ids.length; at += PREFILL_STEP) {
      if (options.signal?.aborted) return;
      await this.session.prefill(ids.slice(at, at + PREFILL_STEP));
      options.onProgress?.(Math.min(ids.length, at + PREFILL_STEP), ids.length);
    }
  }

  async compress(budget?: Budget): Promise<CompressionMap | undefined> {
    if (this.policy === 'full') return undefined;
    const policy = this.session.options.policy;
    const { remap, headsAboveBudget, trace } = this.session.compress(policy, budget ?? policy.budget);
    return trace ? { remap, headsAboveBudget, trace } : { remap, headsAboveBudget };
  }

  async score(ids: readonly number[], options: StepProgress = {}): Promise<{ nll: number; count: number }> {
    let nll = 0;
    let count = 0;
    for (let at = 0; at < ids.length; at += PREFILL_STEP) {
      if (options.signal?.aborted) break;
      const { logProbs } = await this.session.score(ids.slice(at, at + PREFILL_STEP));
      for (const lp of logProbs) nll -= lp;
      count += logProbs.length;
      options.onProgress?.(count, ids.length);
    }
    return { nll, count };
  }

  async *generate(
    prompt: readonly number[],
    sampling: SamplingOptions,
    options: { signal?: AbortSignal } = {},
  ): AsyncIterable<GeneratedToken> {
    const stream = this.session.generate(prompt.slice(), {
      maxTokens: sampling.maxTokens,
      temperature: sampling.temperature,
      topK: sampling.topK,
      topP: sampling.topP,
      // The runtime's xorshift PRNG needs a non-zero state; the evaluation's seeds start at 0.
      seed: sampling.seed + 1,
      stop: sampling.stop,
      signal: options.signal,
    });
    for await (const event of stream) yield { tokenId: event.tokenId, text: event.text };
  }

  stats(): CacheStats {
    const s = this.session.stats();
    const { numLayers, numKvHeads } = this.model.config;
    let entries = 0;
    for (const e of s.entries) entries += e;
    return {
      tokens: s.position,
      entries,
      fullEntries: s.position * numLayers * numKvHeads,
      entriesPerHead: s.entries,
      bytes: s.bytes.current,
      fullBytes: s.bytes.full,
    };
  }

  fork(policy: PolicyName, budget: Budget, knobs: PolicyKnobs = {}): EngineSession {
    const copy = this.session.fork(sessionOptions(policy, budget, knobs, this.kvDtype));
    return new RuntimeEngineSession(this.model, copy, policy, this.kvDtype);
  }

  dispose(): void {
    this.session.dispose();
  }
}

class RuntimeEngine implements Engine {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxContext: number;
  readonly vocabSize: number;

  constructor(
    private readonly model: RuntimeModel,
    readonly label: string,
    private readonly kvDtype: KVDtype,
  ) {
    const c = model.config;
    this.numLayers = c.numLayers;
    this.numKvHeads = c.numKvHeads;
    this.headDim = c.headDim;
    this.maxContext = c.maxContext;
    this.vocabSize = c.vocabSize;
  }

  private tokenizer() {
    const t = this.model.tokenizer;
    if (!t) throw new TypeError(`${this.label} has no tokenizer`);
    return t;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer().encode(text, options);
  }

  decode(ids: ArrayLike<number>): string {
    return this.tokenizer().decode(ids);
  }

  delimiters(level: 'sentence' | 'clause'): DelimiterSet {
    return this.model.delimiters(level);
  }

  session(
    policy: PolicyName,
    budget: Budget,
    knobs: PolicyKnobs = {},
    options: { collectAllMass?: boolean } = {},
  ): EngineSession {
    const session = this.model.createSession({
      ...sessionOptions(policy, budget, knobs, this.kvDtype),
      ...(options.collectAllMass ? { collectMass: 'all' as const } : {}),
    });
    return new RuntimeEngineSession(this.model, session, policy, this.kvDtype);
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}

/** Loads a model through @semanticache/runtime (imported on first use, so importing this package stays fast). */
export async function loadRuntimeEngine(location: ModelLocation, options: EngineOptions = {}): Promise<Engine> {
  const runtime: Runtime = await import('@semanticache/runtime');
  const weights = options.weights ?? 'float32';
  const load = { intraOpThreads: options.threads ?? 1, weightFormat: weights };
  const model =
    location.format === 'hf'
      ? await runtime.loadModel(location.dir, load)
      : await runtime.loadModel(location.file, { ...load, tokenizerPath: location.tokenizer });
  // the label names the KV storage only when it is not the runtime's default (float16)
  const kvDtype = options.kvDtype ?? 'float16';
  const label = `${location.label}${weights === 'float32' ? '' : `, ${weights} weights`}${kvDtype === 'float32' ? ', fp32 KV' : ''}`;
  return new RuntimeEngine(model, label, kvDtype);
}
