/**
 * Generation on its own: the options and events of a stream, the incremental detokenizer, and the loop that samples,
 * checks the stop criteria and asks for the next logits. It knows nothing of caches or sessions: a session hands it
 * the first logits and the one call that feeds a sampled token.
 */
import type { Sampler } from './sampler.js';
import type { StopCriteria } from './stopping.js';
import type { TextTokenizer } from './tokenizer.js';

export interface GenerateOptions {
  /** Most tokens to generate (default 256). */
  maxTokens?: number;
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Keep only the k most likely tokens (default 0 = off). */
  topK?: number;
  /** Nucleus sampling mass (default 1 = off). */
  topP?: number;
  /** Seed of the sampler's PRNG (xorshift64*, as llama2.c); random when omitted. */
  seed?: number;
  /** Stop when one of these token ids is sampled, or one of these strings appears in the output. */
  stop?: ReadonlyArray<number | string>;
  /** Do not stop at the model's EOS ids (default false). */
  ignoreEos?: boolean;
  signal?: AbortSignal;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'abort';

export interface GenerateEvent {
  tokenId: number;
  /** Text that became final with this token (may be empty: incomplete UTF-8, or held back as a possible stop string). */
  text: string;
  /** Present on the last event. */
  finishReason?: FinishReason;
}

/**
 * Incremental detokenizer: feeds ids one at a time and returns only text that is final. Decoding a window of ids
 * that starts a few tokens back keeps word-initial spaces right, and text ending in U+FFFD (an incomplete UTF-8
 * sequence split across tokens) is held back until the rest arrives.
 */
export class StreamDecoder {
  private ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(
    private tokenizer: Pick<TextTokenizer, 'decode'>,
    context: ArrayLike<number> = [],
  ) {
    this.ids = Array.from(context).slice(-4);
    this.readOffset = this.ids.length;
  }

  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      const text = full.slice(prefix.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return text;
    }
    return '';
  }

  /** Whatever is still held back (e.g. a trailing incomplete character), decoded as is. */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }
}

export interface GenerationPlan {
  sampler: Sampler;
  stopping: StopCriteria;
  /** Absent for a model without a tokenizer: events then carry ids and empty text. */
  decoder: StreamDecoder | undefined;
  maxTokens: number;
  signal?: AbortSignal;
}

/** What the loop asks of whoever holds the cache. */
export interface GenerationSteps {
  /** A token was sampled: it is fed by the next call to `next`, or by whatever runs after the stream ends. */
  sampled(token: number): void;
  /** Whether one more token fits in the context after the sampled one. */
  hasRoom(): boolean;
  /** Feeds the sampled token; the next token's logits. */
  next(): Promise<Float32Array>;
}

/**
 * Samples from `logits`, then from what each `steps.next()` returns, until a stop criterion, `maxTokens`, the end of
 * the context or the signal. The last event carries the finish reason; an abort by the signal ends the stream
 * without one.
 */
export async function* generateTokens(
  logits: Float32Array,
  plan: GenerationPlan,
  steps: GenerationSteps,
): AsyncGenerator<GenerateEvent> {
  const { sampler, stopping, decoder, maxTokens, signal } = plan;
  let held = '';
  for (let produced = 1; ; produced++) {
    if (signal?.aborted) return;
    const token = sampler.sample(logits);
    steps.sampled(token);
    const tokenStop = stopping.tokenStop(token);
    if (tokenStop) {
      yield { tokenId: token, text: held + (decoder?.flush() ?? ''), finishReason: tokenStop };
      return;
    }
    held += decoder?.push(token) ?? '';
    const hit = stopping.firstStop(held);
    if (hit >= 0) {
      yield { tokenId: token, text: held.slice(0, hit), finishReason: 'stop' };
      return;
    }
    if (produced >= maxTokens || !steps.hasRoom()) {
      yield { tokenId: token, text: held + (decoder?.flush() ?? ''), finishReason: 'length' };
      return;
    }
    const keep = stopping.heldBack(held);
    yield { tokenId: token, text: held.slice(0, held.length - keep) };
    held = held.slice(held.length - keep);
    logits = await steps.next();
  }
}
