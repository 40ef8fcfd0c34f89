import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Folder holding the demo model in HF layout (config.json, sharded safetensors + index, tokenizer.json). */
export const demoModelDir: string = path.resolve(here, '..', 'weights');

/** Throws if the packaged weights are missing (a partial install); returns the folder otherwise. */
export function requireDemoModelDir(): string {
  if (!existsSync(path.join(demoModelDir, 'config.json'))) {
    throw new Error(`@semanticache/model-demo: weights not found in ${demoModelDir}`);
  }
  return demoModelDir;
}
