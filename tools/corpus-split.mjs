#!/usr/bin/env node
// Splits the held-out corpus (fixtures/corpus/val.txt.xz, 36 books the demo models never trained on) by whole
// books into a dev set (tune here) and a test set (report here), as written down in docs/results/corpus-split.json.
// Usage: node tools/corpus-split.mjs [path/to/val.txt.xz] [out-dir]   (default out-dir: eval-data/)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = process.argv[2] ?? join(root, 'fixtures/corpus/val.txt.xz');
const outDir = process.argv[3] ?? join(root, 'eval-data');
const split = JSON.parse(readFileSync(join(root, 'docs/results/corpus-split.json'), 'utf8'));

// Node has no xz decoder; python3's lzma module does (python3 is already needed for the addon's build)
const unxz = spawnSync(
  'python3',
  ['-c', 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())', source],
  {
    maxBuffer: 1 << 30,
  },
);
if (unxz.status !== 0) {
  console.error(`corpus-split: cannot read ${source}: ${unxz.stderr?.toString().trim() || unxz.error?.message}`);
  process.exit(1);
}
const books = unxz.stdout
  .toString('utf8')
  .split(/^<\|endoftext\|>$/m)
  .map((b) => b.trim())
  .filter((b) => b.length > 0);
if (books.length !== split.books) {
  console.error(`corpus-split: expected ${split.books} books in ${source}, found ${books.length}`);
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
for (const part of ['dev', 'test']) {
  const indices = split[part].map((b) => b.index);
  for (const b of split[part]) {
    const head = books[b.index].slice(0, 4000).replace(/\s+/g, ' ');
    if (!head.toLowerCase().includes(b.check.toLowerCase())) {
      console.error(`corpus-split: book ${b.index} does not start like '${b.title}'`);
      process.exit(1);
    }
  }
  const text = indices.map((i) => books[i]).join('\n<|endoftext|>\n');
  writeFileSync(join(outDir, `${part}.txt`), `${text}\n`);
  console.log(`${part}: ${indices.length} books, ${text.length} characters → ${join(outDir, `${part}.txt`)}`);
}
