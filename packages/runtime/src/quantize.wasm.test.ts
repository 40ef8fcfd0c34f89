import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain JavaScript module without type declarations
import { generate } from '../../../tools/build-wasm.mjs';

it('src/quantize.wasm.ts is compiled from the current assembly/quantize.ts (else run pnpm build:wasm)', async () => {
  const source: string = await generate(fileURLToPath(new URL('../assembly/quantize.ts', import.meta.url)));
  const committed = readFileSync(new URL('./quantize.wasm.ts', import.meta.url), 'utf8');
  expect(source === committed, 'src/quantize.wasm.ts is stale: run pnpm build:wasm').toBe(true);
});
