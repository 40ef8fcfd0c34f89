import { float16BitsToFloat32Array } from '@semanticache/kv-cache';
import type { ModelConfig } from './config.js';
import { bf16ToFloat32, type StoredFloat } from './safetensors.js';
import type { ModelWeights } from './weights.js';

/**
 * The token embedding matrix, kept as the checkpoint stores it and widened to fp32 a row at a time: a forward pass
 * needs only its block's rows, so a 16-bit table is never held as fp32 (a 0.5B model's is 272 MB in bf16).
 */
export class EmbeddingTable {
  constructor(
    private readonly stored: StoredFloat,
    readonly rows: number,
    readonly width: number,
  ) {
    if (stored.data.length !== rows * width) {
      throw new RangeError(`embedding: ${stored.data.length} values for ${rows} rows of ${width}`);
    }
  }

  /** Rows `ids[0..m)` as an m × width fp32 block; an id outside the table is a RangeError. */
  lookup(ids: Int32Array): Float32Array {
    const w = this.width;
    const out = new Float32Array(ids.length * w);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < this.rows))
        throw new RangeError(`token id ${id} is outside the embedding's ${this.rows} rows`);
      const row = out.subarray(i * w, (i + 1) * w);
      const { dtype, data } = this.stored;
      if (dtype === 'F32') row.set(data.subarray(id * w, (id + 1) * w));
      else if (dtype === 'F16') float16BitsToFloat32Array(data.subarray(id * w, (id + 1) * w), row);
      else bf16ToFloat32(data.subarray(id * w, (id + 1) * w), row); // values were checked finite at load
    }
    return out;
  }
}

/** Weights that can hand out the embedding as stored (a streamed checkpoint); others give it as fp32 (`embed`). */
export interface StoredEmbedding {
  embeddingTable(): EmbeddingTable;
}

export function embeddingTableOf(config: ModelConfig, weights: ModelWeights | (ModelWeights & StoredEmbedding)) {
  return 'embeddingTable' in weights
    ? weights.embeddingTable()
    : new EmbeddingTable({ dtype: 'F32', data: weights.embed }, config.vocabSize, config.hiddenSize);
}
