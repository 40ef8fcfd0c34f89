import * as ort from 'onnxruntime-node';
import type { AttentionKernel, HeadCache } from './attention.js';
import { type ModelConfig, ropeInverseFrequencies } from './config.js';
import { type EmbeddingTable, embeddingTableOf } from './embedding.js';
import { DisposedError } from './errors.js';
import { type GraphStream, graphsInThread } from './graph-stream.js';
import {
  type BuiltGraph,
  type GraphKey,
  type GraphOptions,
  graphLoadOrder,
  ropeTables,
  type WeightFormat,
} from './graphs.js';
import type { ModelWeights } from './weights.js';

/** What the forward pass needs from a KV cache (a subset of `@semanticache/kv-cache`'s KVCache). */
export interface ForwardCache {
  append(layer: number, keys: Float32Array, values: Float32Array, positions: Int32Array): void;
  heads(layer: number): HeadCache[];
}

export interface TransformerOptions {
  /** ORT intra-op threads (default 1: the attention kernel has its own threads; see README for measurements). */
  intraOpThreads?: number;
  /** Let ORT worker threads spin between runs (default false: spinning burns the second core the kernel needs). */
  allowSpinning?: boolean;
  /** Fuse post-attention(l-1) with pre-attention(l) into one graph (default true: L + 2 runs per step, not 2L + 1). */
  fuseLayers?: boolean;
  /** 'int8' / 'int4' quantize the projection and LM-head matrices to 8- or 4-bit blocks of 32 (default 'float32'). */
  weightFormat?: WeightFormat;
  /**
   * With int8 / int4 weights, quantize each activation row to int8 per block before the product (default true: what
   * llama.cpp's Q8_0 / Q4_0 dot products do, and ORT's fast path; measured 1.75× / 1.4× faster decode on the demo
   * model at the same held-out NLL); false multiplies fp32 activations.
   */
  quantizedActivations?: boolean;
}

type MidSessions = ort.InferenceSession | { post: ort.InferenceSession; pre: ort.InferenceSession };

export type LogitsMode = 'last' | 'all' | 'none';

/**
 * The model's ORT sessions. `forward` runs one block of tokens through every layer: ORT for the dense math, the
 * attention kernel over the cache in between.
 */
export class Transformer {
  private disposed = false;
  /** Forward passes in flight: dispose waits for them (they stop at the next layer) before releasing the sessions. */
  private running = new Set<Promise<unknown>>();
  private readonly inverseFrequencies: Float32Array;

  private constructor(
    readonly config: ModelConfig,
    /** the token embedding as stored; the first graph takes the looked-up rows */
    private embedding: EmbeddingTable,
    private first: ort.InferenceSession,
    private mid: MidSessions[],
    private last: ort.InferenceSession,
    private head: ort.InferenceSession,
  ) {
    this.inverseFrequencies = ropeInverseFrequencies(config.rope, config.headDim);
  }

  /**
   * Creates the sessions from `weights`' graphs, built in this thread, or by `graphs` when given (an HF folder's
   * graphs built in worker threads, {@link graphsInWorkers}); the embedding comes from `weights` either way (read
   * in this thread while the workers start: reading it in one of them measured no faster and peaked higher).
   */
  static async create(
    config: ModelConfig,
    weights: ModelWeights,
    options: TransformerOptions = {},
    graphs?: (options: GraphOptions) => GraphStream,
  ): Promise<Transformer> {
    const threads = options.intraOpThreads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`intraOpThreads: expected an integer ≥ 1, got ${String(threads)}`);
    }
    const weightFormat = options.weightFormat ?? 'float32';
    if (weightFormat !== 'float32' && weightFormat !== 'int8' && weightFormat !== 'int4') {
      throw new TypeError(`weightFormat: expected 'float32', 'int8' or 'int4', got ${String(weightFormat)}`);
    }
    const sessionOptionsFor = (key: GraphKey): ort.InferenceSession.SessionOptions => ({
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      extra: {
        session: {
          intra_op: { allow_spinning: options.allowSpinning ? '1' : '0' },
          // An fp32 head multiplies one row per step (the last token's logits): unpacked, ORT runs that as fast and
          // creates the session 2× faster (bench/prepack.ts). The layers keep their packed matrices, which prefill
          // faster; MatMulNBits needs its packing.
          ...(key === 'head' && weightFormat === 'float32' ? { disable_prepacking: '1' } : {}),
        },
      },
    });
    const graphOptions: GraphOptions = {
      fuse: options.fuseLayers ?? true,
      weightFormat,
      quantizedActivations: options.quantizedActivations,
    };
    // One graph at a time, each handed to ORT as it comes: the model's fp32 weights and graph bytes
    // never exist all at once.
    const stream = graphs ? graphs(graphOptions) : graphsInThread(config, weights, graphOptions);
    const sessions: ort.InferenceSession[] = [];
    const create = async (bytes: Uint8Array, key: GraphKey) => {
      const session = await ort.InferenceSession.create(bytes, sessionOptionsFor(key));
      sessions.push(session);
      return session;
    };
    const createBuilt = async (g: BuiltGraph, key: GraphKey): Promise<MidSessions> =>
      g instanceof Uint8Array
        ? await create(g, key)
        : { post: await create(g.post, key), pre: await create(g.pre, key) };
    try {
      // read while the first graphs are built (in workers, when given)
      const embedding = embeddingTableOf(config, weights);
      const byKey = new Map<GraphKey, MidSessions>();
      for (const _ of graphLoadOrder(config.numLayers)) {
        const { key, graph } = await stream.next();
        byKey.set(key, await createBuilt(graph, key));
      }
      const built = (key: GraphKey) => {
        const created = byKey.get(key);
        if (!created) throw new TypeError(`graph stream: no graph ${key}`);
        return created;
      };
      const one = (key: GraphKey) => {
        const session = built(key);
        if ('post' in session) throw new TypeError(`graph stream: expected one graph for ${key}`);
        return session;
      };
      const mid = Array.from({ length: config.numLayers - 1 }, (_, i) => built(i + 1));
      return new Transformer(config, embedding, one('first'), mid, one('last'), one('head'));
    } catch (err) {
      // a tensor that fails to read (non-finite, truncated) stops the load: free what was created
      for (const s of sessions) await s.release();
      throw err;
    } finally {
      await stream.close();
    }
  }

  /**
   * Runs `ids` (one block) at positions `start, start+1, …`, appending their keys and values to `cache`.
   * Returns logits for the last row, for every row (`all`, m × vocab), or nothing.
   * `attentionMass(layer)` may return per-KV-head accumulators the kernel adds this block's attention mass into.
   */
  async forward(
    ids: Int32Array,
    start: number,
    cache: ForwardCache,
    kernel: AttentionKernel,
    logits: LogitsMode,
    attentionMass?: (layer: number) => Float32Array[] | undefined,
  ): Promise<Float32Array> {
    this.assertLive();
    const run = this.forwardBlock(ids, start, cache, kernel, logits, attentionMass);
    this.running.add(run);
    try {
      return await run;
    } finally {
      this.running.delete(run);
    }
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the model has been disposed');
  }

  private async forwardBlock(...args: Parameters<Transformer['forward']>): Promise<Float32Array> {
    const [ids, start, cache, kernel, logits, attentionMass] = args;
    const { numLayers: L, numHeads: H, headDim: d, hiddenSize } = this.config;
    const m = ids.length;
    const positions = new Int32Array(m);
    for (let i = 0; i < m; i++) positions[i] = start + i;
    const tables = ropeTables(this.inverseFrequencies, start, m);
    const half = d / 2;
    const rope = {
      cos: new ort.Tensor('float32', tables.cos, [m, half]),
      sin: new ort.Tensor('float32', tables.sin, [m, half]),
    };
    let h: ort.Tensor = new ort.Tensor('float32', this.embedding.lookup(ids), [m, hiddenSize]);
    let r = await this.first.run({ h, ...rope });
    for (let l = 0; l < L; l++) {
      this.assertLive();
      cache.append(l, r.k.data as Float32Array, r.v.data as Float32Array, positions);
      const attn = kernel.prefill({
        q: r.q.data as Float32Array,
        heads: cache.heads(l),
        numHeads: H,
        headDim: d,
        blockLength: m,
        attentionMass: attentionMass?.(l),
      });
      const attnTensor = new ort.Tensor('float32', attn, [m, H * d]);
      const next = this.mid[l];
      if (next && 'post' in next) {
        h = (await next.post.run({ h_in: h, attn: attnTensor })).h;
        r = { h, ...(await next.pre.run({ h, ...rope })) };
      } else if (next) {
        r = await next.run({ h_in: h, attn: attnTensor, ...rope });
        h = r.h;
      } else {
        r = await this.last.run({ h_in: h, attn: attnTensor });
      }
    }
    this.assertLive();
    if (logits === 'none') return new Float32Array(0);
    const hidden = r.hidden.data as Float32Array;
    const rows = logits === 'all' ? hidden : hidden.subarray((m - 1) * hiddenSize);
    const out = await this.head.run({
      hidden: new ort.Tensor('float32', rows, [rows.length / hiddenSize, hiddenSize]),
    });
    return out.logits.data as Float32Array;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.allSettled(this.running);
    const mid = this.mid.flatMap((m) => ('post' in m ? [m.post, m.pre] : [m]));
    for (const s of [this.first, ...mid, this.last, this.head]) await s.release();
  }
}
