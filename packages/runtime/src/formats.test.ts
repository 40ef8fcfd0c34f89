import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadModel } from './model.js';
import { maxAbsDiff, parityDir, readJson } from './test-support.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'runtime-formats-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Header {
  [name: string]: { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>;
}

/** Rewrites a float32 safetensors file with every tensor in bf16 (rounded to nearest even). */
function toBf16(src: string, dst: string): void {
  const bytes = readFileSync(src);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n)) as Header;
  const parts: Buffer[] = [];
  let offset = 0;
  const out: Header = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = info as { shape: number[]; data_offsets: [number, number] };
    const f32 = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset + 8 + n + t.data_offsets[0], bytes.byteOffset + 8 + n + t.data_offsets[1]),
    );
    const u32 = new Uint32Array(f32.buffer);
    const bf = Uint16Array.from(u32, (b) => (b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
    parts.push(Buffer.from(bf.buffer));
    out[name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + bf.byteLength] };
    offset += bf.byteLength;
  }
  let json = JSON.stringify(out);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(dst, Buffer.concat([len, Buffer.from(json), ...parts]));
}

describe('checkpoint variants', () => {
  test('bf16 tensors load (widened to fp32) and stay close to the fp32 checkpoint', async () => {
    const dir = mkdtempSync(path.join(scratch, 'bf16-'));
    writeFileSync(path.join(dir, 'config.json'), readFileSync(path.join(parityDir('llama-gqa'), 'config.json')));
    toBf16(path.join(parityDir('llama-gqa'), 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const ref = readJson<{ input_ids: number[]; logits: number[][] }>(
      path.join(parityDir('llama-gqa'), 'reference.json'),
    );
    const model = await loadModel(dir);
    const err = maxAbsDiff(await model.createSession({ kvDtype: 'float32' }).prefill(ref.input_ids), ref.logits[39]);
    expect(err).toBeGreaterThan(0); // it really is a different (rounded) checkpoint
    expect(err).toBeLessThan(0.05);
    await model.dispose();
  });

  test('the older rope_theta + rope_scaling spelling gives the same model as rope_parameters', async () => {
    const src = parityDir('llama3-rope-scaling');
    const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8'));
    const { rope_theta, ...scaling } = config.rope_parameters;
    delete config.rope_parameters;
    Object.assign(config, { rope_theta, rope_scaling: scaling });
    const dir = mkdtempSync(path.join(scratch, 'rope-'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(path.join(dir, 'model.safetensors'), readFileSync(path.join(src, 'model.safetensors')));
    const ref = readJson<{ input_ids: number[]; logits: number[][] }>(path.join(src, 'reference.json'));
    const model = await loadModel(dir);
    expect(model.config.rope).toMatchObject({ type: 'llama3', theta: 500000, factor: 8 });
    expect(
      maxAbsDiff(await model.createSession({ kvDtype: 'float32' }).prefill(ref.input_ids), ref.logits[39]),
    ).toBeLessThan(1e-4);
    // and dropping the scaling really changes the logits (the fixture exercises it)
    delete config.rope_scaling;
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const plain = await loadModel(dir);
    expect(
      maxAbsDiff(await plain.createSession({ kvDtype: 'float32' }).prefill(ref.input_ids), ref.logits[39]),
    ).toBeGreaterThan(1e-3);
    await Promise.all([model.dispose(), plain.dispose()]);
  });
});
