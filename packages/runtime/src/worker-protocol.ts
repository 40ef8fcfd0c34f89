// Messages between WorkerModel (parent thread) and worker.ts.
import type { Budget } from '@semanticache/kv-cache';
import type { SerializedError } from './errors.js';
import type { GenerateEvent, GenerateOptions } from './generation.js';
import type { LoadModelOptions } from './model.js';
import type { CachePolicy } from './policy.js';
import type { SessionOptions } from './session.js';

export type Request = { id: number } & (
  | { type: 'load'; path: string; options: LoadModelOptions }
  | { type: 'encode'; text: string; options?: { addSpecialTokens?: boolean } }
  | { type: 'decode'; ids: number[]; options?: { skipSpecialTokens?: boolean } }
  | { type: 'createSession'; options: SessionOptions }
  | { type: 'restoreSession'; bytes: Uint8Array; options: SessionOptions }
  | { type: 'fork'; session: number; options: SessionOptions }
  | { type: 'prefill'; session: number; ids: number[] | Int32Array }
  | { type: 'decodeStep'; session: number; tokenId: number }
  | { type: 'score'; session: number; ids: number[] | Int32Array }
  | { type: 'compress'; session: number; policy?: CachePolicy; budget?: Budget }
  | { type: 'stats'; session: number }
  | { type: 'snapshot'; session: number }
  | { type: 'disposeSession'; session: number }
  | {
      type: 'generate';
      session: number;
      prompt: string | number[] | Int32Array;
      options: Omit<GenerateOptions, 'signal'>;
    }
  | { type: 'abort'; target: number }
  | { type: 'dispose' }
);

export type Response =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SerializedError }
  | { id: number; event: GenerateEvent };
