#!/usr/bin/env node
// Compiles an AssemblyScript module (WebAssembly SIMD, no runtime, memory imported from JS) and writes it as a
// TypeScript module exporting the bytes in base64, so that every package stays plain JavaScript once built.
//   node tools/build-wasm.mjs <assembly/x.ts> <src/x.wasm.ts>          write the module
//   node tools/build-wasm.mjs --check <assembly/x.ts> <src/x.wasm.ts>  exit 1 if the written module is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import asc from 'assemblyscript/asc';

export const ASC_FLAGS = [
  '-O3',
  '--runtime',
  'stub',
  '--enable',
  'simd',
  '--noAssert',
  '--importMemory',
  '--noExportMemory',
];

/** The generated TypeScript source for `input` (an AssemblyScript file). */
export async function generate(input) {
  let binary = null;
  const { error, stderr } = await asc.main([input, ...ASC_FLAGS, '--outFile', 'module.wasm'], {
    writeFile(name, contents) {
      if (name.endsWith('.wasm')) binary = contents;
    },
  });
  if (error) throw new Error(`${input}: ${error.message}\n${stderr.toString()}`);
  const root = resolve(import.meta.dirname, '..');
  const from = relative(root, resolve(input));
  const base64 = Buffer.from(binary).toString('base64');
  return [
    `// Generated from ${from} by tools/build-wasm.mjs (AssemblyScript ${asc.version}); do not edit.`,
    `export const wasmBase64 =`,
    `  '${base64}';`,
    '',
  ].join('\n');
}

const args = process.argv.slice(2);
if (args.length > 0) {
  const check = args[0] === '--check';
  const [input, output] = check ? args.slice(1) : args;
  if (!input || !output) {
    console.error('usage: build-wasm.mjs [--check] <assembly/x.ts> <src/x.wasm.ts>');
    process.exit(2);
  }
  const source = await generate(input);
  if (check) {
    let current = '';
    try {
      current = readFileSync(output, 'utf8');
    } catch {}
    if (current !== source) {
      console.error(`${output} is stale: run node tools/build-wasm.mjs ${input} ${output}`);
      process.exit(1);
    }
  } else writeFileSync(output, source);
}
