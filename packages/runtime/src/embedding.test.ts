import { float32ArrayToFloat16Bits } from '@semanticache/kv-cache';
import { describe, expect, test } from 'vitest';
import { EmbeddingTable } from './embedding.js';

const rows = 5;
const width = 3;
const values = Float32Array.from({ length: rows * width }, (_, i) => (i - 7) * 0.375); // exact in fp16 and bf16

describe('EmbeddingTable', () => {
  const bf16 = Uint16Array.from(new Uint32Array(values.buffer), (bits) => bits >>> 16);
  const tables = {
    F32: new EmbeddingTable({ dtype: 'F32', data: values }, rows, width),
    F16: new EmbeddingTable({ dtype: 'F16', data: float32ArrayToFloat16Bits(values) }, rows, width),
    BF16: new EmbeddingTable({ dtype: 'BF16', data: bf16 }, rows, width),
  };

  test.each(Object.keys(tables) as (keyof typeof tables)[])('%s: the rows of the ids, widened to fp32', (dtype) => {
    const ids = Int32Array.of(4, 0, 4, 2);
    const want = new Float32Array([...ids].flatMap((id) => [...values.subarray(id * width, (id + 1) * width)]));
    expect(tables[dtype].lookup(ids)).toEqual(want);
  });

  test('an id outside the table is a RangeError, not a read past it', () => {
    for (const id of [-1, rows, 2 ** 31 - 1]) {
      expect(() => tables.BF16.lookup(Int32Array.of(0, id))).toThrow(RangeError);
    }
  });

  test('a table of the wrong size is refused', () => {
    expect(() => new EmbeddingTable({ dtype: 'F32', data: values }, rows + 1, width)).toThrow(/15 values for 6 rows/);
  });
});
