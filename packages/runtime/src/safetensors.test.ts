import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { float32ArrayToFloat16Bits } from '@semanticache/kv-cache';
import { afterAll, describe, expect, test } from 'vitest';
import { SafetensorsFile } from './safetensors.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'runtime-safetensors-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// more elements than one 8 MiB read piece of 16-bit values holds, so the widening crosses piece boundaries
const N = 4 * 1024 * 1024 + 37;

function write(tensors: Record<string, { dtype: string; data: Uint8Array }>): string {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const width = t.dtype === 'F32' ? 4 : 2;
    header[name] = { dtype: t.dtype, shape: [t.data.length / width], data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(scratch, `${Object.keys(tensors).join('-')}.safetensors`);
  writeFileSync(file, Buffer.concat([len, json, ...Object.values(tensors).map((t) => t.data)]));
  return file;
}

/** Index of the first element where a and b differ (bit for bit), or -1; toEqual is too slow on 4M elements. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

describe('SafetensorsFile.readFloat32Into', () => {
  // eighths up to ±16: exact in f16, bf16 and f32
  const values = Float32Array.from({ length: N }, (_, i) => ((i % 255) - 127) / 8);
  const bf16 = Uint16Array.from(new Uint32Array(values.buffer), (w) => w >>> 16);
  const f16 = float32ArrayToFloat16Bits(values);
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

  test('F32, F16 and BF16 widen to the same values across read pieces; -1: all finite', () => {
    const file = new SafetensorsFile(
      write({
        f32: { dtype: 'F32', data: bytes(values) },
        f16: { dtype: 'F16', data: bytes(f16) },
        bf16: { dtype: 'BF16', data: bytes(bf16) },
      }),
    );
    try {
      for (const name of ['f32', 'f16', 'bf16']) {
        const dst = new Float32Array(N);
        expect(file.readFloat32Into(name, dst)).toBe(-1);
        expect(firstDifference(dst, values)).toBe(-1);
        expect(firstDifference(file.readFloat32(name).data, values)).toBe(-1);
      }
      expect(() => file.readFloat32Into('bf16', new Float32Array(N - 1))).toThrow(RangeError);
    } finally {
      file.close();
    }
  });

  test('the first non-finite element is found in every dtype, past the first read piece too', () => {
    const at = N - 5;
    const f32 = Float32Array.from(values);
    f32[at] = Number.NEGATIVE_INFINITY;
    const h = Uint16Array.from(f16);
    h[at] = 0x7e00; // NaN
    const b = Uint16Array.from(bf16);
    b[at] = 0x7f80; // +Infinity
    b[at + 2] = 0x7fc0; // NaN: a later one is not reported
    const file = new SafetensorsFile(
      write({
        nf32: { dtype: 'F32', data: bytes(f32) },
        nf16: { dtype: 'F16', data: bytes(h) },
        nbf16: { dtype: 'BF16', data: bytes(b) },
      }),
    );
    try {
      for (const name of ['nf32', 'nf16', 'nbf16']) expect(file.readFloat32Into(name, new Float32Array(N))).toBe(at);
      // readStored keeps the stored dtype and finds the same element
      for (const [name, dtype] of [
        ['nf32', 'F32'],
        ['nf16', 'F16'],
        ['nbf16', 'BF16'],
      ]) {
        const { stored, firstNonFinite } = file.readStored(name);
        expect([stored.dtype, stored.data.length, firstNonFinite]).toEqual([dtype, N, at]);
      }
      const clean = file.readStored('nf16');
      expect(clean.stored.data).toBeInstanceOf(Uint16Array);
    } finally {
      file.close();
    }
  });

  test('readStored returns the stored values unchanged', () => {
    const file = new SafetensorsFile(
      write({ sf32: { dtype: 'F32', data: bytes(values) }, sf16: { dtype: 'F16', data: bytes(f16) } }),
    );
    try {
      const a = file.readStored('sf32');
      expect(a.firstNonFinite).toBe(-1);
      expect(firstDifference(a.stored.data as Float32Array, values)).toBe(-1);
      const b = file.readStored('sf16');
      expect(b.firstNonFinite).toBe(-1);
      expect(Buffer.from((b.stored.data as Uint16Array).buffer).equals(Buffer.from(f16.buffer))).toBe(true);
    } finally {
      file.close();
    }
  });
});
