import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TextCodec } from './tasks.js';

export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(packageRoot, '..', '..');
/** The held-out slice the demo models never trained on (the CLI bundles the same file). */
export const HELD_OUT_PATH = path.join(repoRoot, 'fixtures', 'corpus', 'val-slice.txt');
/** The embedded demo model's folder. */
export const DEMO_MODEL_DIR = path.join(repoRoot, 'packages', 'model-demo', 'weights');

/** A word-level codec: each run of whitespace plus the word after it is one token (enough to measure lengths). */
export class WordCodec implements TextCodec {
  private readonly ids = new Map<string, number>();
  private readonly words: string[] = [];

  encode(text: string): number[] {
    return (text.match(/\s*\S+|\s+$/g) ?? []).map((w) => {
      let id = this.ids.get(w);
      if (id === undefined) {
        id = this.words.length;
        this.ids.set(w, id);
        this.words.push(w);
      }
      return id;
    });
  }

  decode(ids: ArrayLike<number>): string {
    return Array.from(ids, (id) => this.words[id]).join('');
  }
}
