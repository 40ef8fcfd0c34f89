// Converts a checkpoint the runtime loads (HF Llama / Mistral folder, or llama2.c .bin) to GGUF for llama.cpp.
//   pnpm exec tsx tools/peers/to-gguf.ts <model folder or .bin> <out.gguf> [--f16 | --q8_0 | --q4_0]
import { type GgufWeightType, writeGguf } from '../../packages/runtime/src/index.js';

const FLAGS: Record<string, GgufWeightType> = { '--f16': 'f16', '--q8_0': 'q8_0', '--q4_0': 'q4_0' };
const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const flags = args.filter((a) => a.startsWith('--'));
if (positional.length !== 2 || flags.length > 1 || flags.some((f) => !(f in FLAGS))) {
  console.error('usage: tsx tools/peers/to-gguf.ts <model folder or .bin> <out.gguf> [--f16 | --q8_0 | --q4_0]');
  process.exit(2);
}
try {
  const summary = writeGguf(positional[0], positional[1], { weightType: flags.length ? FLAGS[flags[0]] : 'f32' });
  console.log(
    `${summary.file}: ${summary.tensorCount} tensors (${summary.weightType} weights), ` +
      `${(summary.bytes / 2 ** 20).toFixed(1)} MiB, tokenizer ${summary.tokenizerModel}`,
  );
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
