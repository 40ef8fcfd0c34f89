import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ModelLocation } from '@semanticache/eval';
import { UsageError } from './errors.js';

/**
 * Checks a --model / --tokenizer pair before anything heavy loads, so a wrong path is a usage error (exit 2) rather
 * than a failure deep inside the loader.
 */
export function resolveModelLocation(
  model: string | undefined,
  tokenizer: string | undefined,
  demoDir: () => string,
): ModelLocation {
  if (model === undefined) {
    if (tokenizer !== undefined) throw new UsageError('--tokenizer applies to a llama2c .bin given with --model');
    const dir = demoDir();
    return { format: 'hf', dir, label: 'semanticache-demo (embedded)' };
  }
  const resolved = path.resolve(model);
  if (!existsSync(resolved)) throw new UsageError(`--model: no such file or folder: ${model}`);
  if (statSync(resolved).isDirectory()) {
    if (tokenizer !== undefined) throw new UsageError('--tokenizer applies to a llama2c .bin, not to an HF folder');
    for (const required of ['config.json', 'tokenizer.json']) {
      if (!existsSync(path.join(resolved, required))) {
        throw new UsageError(`--model: ${model} is not an HF model folder (no ${required})`);
      }
    }
    return { format: 'hf', dir: resolved, label: path.basename(resolved) };
  }
  if (!resolved.endsWith('.bin')) {
    throw new UsageError(`--model: expected an HF folder or a llama2.c .bin file, got ${model}`);
  }
  let tok: string;
  if (tokenizer !== undefined) {
    tok = path.resolve(tokenizer);
    if (!existsSync(tok) || statSync(tok).isDirectory())
      throw new UsageError(`--tokenizer: no such file: ${tokenizer}`);
  } else {
    const dir = path.dirname(resolved);
    const candidates = readdirSync(dir).filter((f) => /^tok.*\.bin$/.test(f) && path.join(dir, f) !== resolved);
    const preferred = candidates.includes('tokenizer.bin') ? ['tokenizer.bin'] : candidates;
    if (preferred.length !== 1) {
      throw new UsageError(
        preferred.length === 0
          ? `--model: no tokenizer (tok*.bin) beside ${model}; pass --tokenizer FILE`
          : `--model: several tokenizers beside ${model} (${preferred.join(', ')}); pass --tokenizer FILE`,
      );
    }
    tok = path.join(dir, preferred[0]);
  }
  return { format: 'llama2c', file: resolved, tokenizer: tok, label: path.basename(resolved) };
}
