import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Folder holding the retrieval-tuned demo model in HF layout (config.json, sharded safetensors + index, tokenizer.json). */
export const retrievalModelDir: string = path.resolve(here, '..', 'weights');

/** Throws if the packaged weights are missing (a partial install); returns the folder otherwise. */
export function requireRetrievalModelDir(): string {
  if (!existsSync(path.join(retrievalModelDir, 'config.json'))) {
    throw new Error(`@semanticache/model-demo-retrieval: weights not found in ${retrievalModelDir}`);
  }
  return retrievalModelDir;
}
