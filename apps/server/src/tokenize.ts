import { existsSync } from 'node:fs';
import path from 'node:path';
import { HfTextTokenizer } from '@semanticache/runtime';
import type { WorkerPool } from './pool.js';

/** Text → ids for prompts: on the main thread for HF folders (no queueing behind generations), else in a worker. */
export interface PromptTokenizer {
  encode(text: string, addSpecialTokens: boolean): Promise<number[]>;
}

export function promptTokenizer(modelPath: string, pool: WorkerPool): PromptTokenizer {
  const tokenizerJson = path.join(modelPath, 'tokenizer.json');
  if (existsSync(tokenizerJson)) {
    const configPath = path.join(modelPath, 'tokenizer_config.json');
    const tokenizer = HfTextTokenizer.fromFiles(tokenizerJson, existsSync(configPath) ? configPath : undefined);
    return { encode: async (text, addSpecialTokens) => tokenizer.encode(text, { addSpecialTokens }) };
  }
  return { encode: (text, addSpecialTokens) => pool.encode(text, addSpecialTokens) };
}
