import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain JavaScript module without type declarations
import { generate } from '../../../../tools/build-wasm.mjs';

it('src/policies/nearest-key.wasm.ts is compiled from the current assembly/nearest-key.ts (else run pnpm build:wasm)', async () => {
  const source: string = await generate(fileURLToPath(new URL('../../assembly/nearest-key.ts', import.meta.url)));
  const committed = readFileSync(new URL('./nearest-key.wasm.ts', import.meta.url), 'utf8');
  expect(source === committed, 'src/policies/nearest-key.wasm.ts is stale: run pnpm build:wasm').toBe(true);
});
