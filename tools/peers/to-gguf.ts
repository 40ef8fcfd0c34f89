// Converts a checkpoint the runtime loads (HF Llama / Mistral folder, or llama2.c .bin) to GGUF for llama.cpp.
//   pnpm exec tsx tools/peers/to-gguf.ts <model folder or .bin> <out.gguf> [--f16]
import { writeGguf } from '../../packages/runtime/src/index.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const unknown = args.filter((a) => a.startsWith('--') && a !== '--f16');
if (positional.length !== 2 || unknown.length > 0) {
  console.error('usage: tsx tools/peers/to-gguf.ts <model folder or .bin> <out.gguf> [--f16]');
  process.exit(2);
}
try {
  const summary = writeGguf(positional[0], positional[1], { weightType: args.includes('--f16') ? 'f16' : 'f32' });
  console.log(
    `${summary.file}: ${summary.tensorCount} tensors (${summary.weightType} weights), ` +
      `${(summary.bytes / 2 ** 20).toFixed(1)} MiB, tokenizer ${summary.tokenizerModel}`,
  );
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
