// The weights must match what config.json (or a llama2.c header) says, tensor for tensor: anything missing, unused or
// wrongly shaped is a ModelLoadError that names it, never a model that loads and runs as garbage.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { float32ArrayToFloat16Bits } from '@semanticache/kv-cache';
import { afterAll, describe, expect, test } from 'vitest';
import { parseHfConfig } from './config.js';
import { ModelLoadError } from './errors.js';
import { loadModel } from './model.js';
import { parityDir, readJson, storiesDir } from './test-support.js';
import { loadHfWeights } from './weights.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'runtime-load-checks-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Tensors = Map<string, { dtype: string; shape: number[]; data: Buffer }>;

function readTensors(file: string): Tensors {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n)) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out: Tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const data = Buffer.from(bytes.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]));
    out.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return out;
}

function writeTensors(file: string, tensors: Tensors): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...[...tensors.values()].map((t) => t.data)]));
}

/** An fp32 tensor of `shape` filled with `value`. */
function f32(shape: number[], value = 0.5): { dtype: string; shape: number[]; data: Buffer } {
  const a = new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(value);
  return { dtype: 'F32', shape, data: Buffer.from(a.buffer) };
}

/** Rewrites tensor `name` as bf16 (its fp32 values truncated to their top 16 bits) and returns it. */
function toBf16(t: Tensors, name: string): { dtype: string; shape: number[]; data: Buffer } {
  const old = t.get(name);
  if (old?.dtype !== 'F32') throw new Error(`no F32 tensor ${name}`);
  const words = new Uint32Array(Uint8Array.from(old.data).buffer);
  const half = Uint16Array.from(words, (w) => w >>> 16);
  const tensor = { dtype: 'BF16', shape: old.shape, data: Buffer.from(half.buffer) };
  t.set(name, tensor);
  return tensor;
}

/** A copy of a parity checkpoint with `config` merged into its config.json and `tensors` applied to its weights. */
function variant(
  name: string,
  edits: { config?: Record<string, unknown>; tensors?: (t: Tensors) => void } = {},
): string {
  const dir = mkdtempSync(path.join(scratch, `${name}-`));
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) {
    copyFileSync(path.join(parityDir(name), f), path.join(dir, f));
  }
  if (edits.config) {
    const c = readJson<Record<string, unknown>>(path.join(dir, 'config.json'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...c, ...edits.config }));
  }
  if (edits.tensors) {
    const f = path.join(dir, 'model.safetensors');
    const t = readTensors(f);
    edits.tensors(t);
    writeTensors(f, t);
  }
  return dir;
}

async function loadError(file: string, loadWorkers?: number): Promise<ModelLoadError> {
  const err = await loadModel(file, { attention: 'reference', loadWorkers }).then(
    async (model) => {
      await model.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelLoadError);
  return err as ModelLoadError;
}

function hfWeights(dir: string) {
  const configPath = path.join(dir, 'config.json');
  return loadHfWeights(dir, parseHfConfig(readJson(configPath), configPath));
}

describe('HF checkpoints: config.json must agree with the weights', () => {
  test('num_hidden_layers one too low: the extra layer is unused and named', async () => {
    const dir = variant('llama-gqa', { config: { num_hidden_layers: 1 } });
    const err = await loadError(dir);
    expect(err.message).toMatch(/9 unused tensors: model\.layers\.1\.\* \(9 tensors\)/);
    expect(err.message).toMatch(/the weights have layers 0–1 but num_hidden_layers is 1/);
    expect(err.tensor).toBe('model.layers.1.input_layernorm.weight');
    expect(err.file).toBe(path.join(dir, 'model.safetensors'));
  });

  test('num_hidden_layers one too high: the missing layer is named', async () => {
    const err = await loadError(variant('llama-gqa', { config: { num_hidden_layers: 3 } }));
    expect(err.message).toMatch(/9 missing tensors: model\.layers\.2\.\* \(9 tensors\)/);
    expect(err.message).toMatch(/the weights have layers 0–1 but num_hidden_layers is 3/);
    expect(err.tensor).toBe('model.layers.2.input_layernorm.weight');
  });

  test.each([
    ['intermediate_size', 128, 'model.layers.0.mlp.gate_proj.weight', '[160,64]', '[128,64]', 6],
    ['num_key_value_heads', 1, 'model.layers.0.self_attn.k_proj.weight', '[32,64]', '[16,64]', 4],
    ['head_dim', 8, 'model.layers.0.self_attn.q_proj.weight', '[64,64]', '[32,64]', 8],
    ['vocab_size', 500, 'model.embed_tokens.weight', '[512,64]', '[500,64]', 2],
    ['hidden_size', 32, 'model.embed_tokens.weight', '[512,64]', '[512,32]', 21],
  ] as const)(
    '%s = %s: the tensor, its shape and the expected shape are named',
    async (key, value, tensor, got, want, count) => {
      const err = await loadError(variant('llama-gqa', { config: { [key]: value } }));
      expect(err.tensor).toBe(tensor);
      expect(err.message).toContain(
        `${count} tensors with the wrong shape: ${tensor}: shape ${got} does not match the expected ${want}`,
      );
      expect(err.message).not.toMatch(/missing|unused/);
      if (count > 10) expect(err.message).toContain(`… and ${count - 10} more`);
    },
  );

  test('a tensor deleted from the file is missing', async () => {
    const err = await loadError(
      variant('llama-gqa', { tensors: (t) => t.delete('model.layers.1.mlp.up_proj.weight') }),
    );
    expect(err.message).toMatch(/: 1 missing tensor: model\.layers\.1\.mlp\.up_proj\.weight \(file /);
    expect(err.tensor).toBe('model.layers.1.mlp.up_proj.weight');
  });

  test('an extra unknown tensor is unused', async () => {
    const err = await loadError(variant('llama-gqa', { tensors: (t) => t.set('model.extra.weight', f32([4])) }));
    expect(err.message).toMatch(/: 1 unused tensor: model\.extra\.weight \(file /);
    expect(err.tensor).toBe('model.extra.weight');
  });

  test('many unknown tensors: ten are listed, then a count', async () => {
    const err = await loadError(
      variant('llama-gqa', {
        tensors: (t) => {
          for (let i = 0; i < 15; i++) t.set(`extra.${i}`, f32([2]));
        },
      }),
    );
    expect(err.message).toContain('15 unused tensors: extra.0, extra.1, ');
    expect(err.message).toContain('extra.9, … and 5 more');
    expect(err.message).not.toContain('extra.10');
  });

  test('missing, wrongly shaped and unused tensors are reported together', async () => {
    const err = await loadError(
      variant('llama-gqa', {
        tensors: (t) => {
          t.delete('model.norm.weight');
          t.set('model.layers.0.input_layernorm.weight', f32([65]));
          t.set('model.extra.weight', f32([4]));
        },
      }),
    );
    expect(err.message).toMatch(/1 missing tensor: model\.norm\.weight; /);
    expect(err.message).toMatch(
      /model\.layers\.0\.input_layernorm\.weight: shape \[65\] does not match the expected \[64\]; /,
    );
    expect(err.message).toMatch(/1 unused tensor: model\.extra\.weight/);
    expect(err.tensor).toBe('model.norm.weight');
  });

  test('biases: a stored bias the config does not enable is unused, an enabled one that is absent is missing', async () => {
    const extra = await loadError(
      variant('llama-gqa', { tensors: (t) => t.set('model.layers.0.self_attn.o_proj.bias', f32([64])) }),
    );
    expect(extra.message).toMatch(/1 unused tensor: model\.layers\.0\.self_attn\.o_proj\.bias/);
    expect(extra.message).toMatch(/does not enable some of the stored biases/);

    const absent = await loadError(variant('llama-gqa', { config: { attention_bias: true } }));
    expect(absent.message).toMatch(/8 missing tensors: model\.layers\.0\.self_attn\.q_proj\.bias, /);
    expect(absent.message).toContain('model.layers.1.self_attn.o_proj.bias');

    const qwen = await loadError(
      variant('qwen2-qkv-bias', { tensors: (t) => t.delete('model.layers.1.self_attn.k_proj.bias') }),
    );
    expect(qwen.tensor).toBe('model.layers.1.self_attn.k_proj.bias');
  });

  test('tolerated: a tied checkpoint that still stores lm_head.weight, and rotary inv_freq buffers', () => {
    const plain = hfWeights(parityDir('llama-mha-tied'));
    const dir = variant('llama-mha-tied', {
      tensors: (t) => {
        const embed = t.get('model.embed_tokens.weight');
        if (!embed) throw new Error('no embeddings');
        t.set('lm_head.weight', { ...embed, data: Buffer.from(embed.data) });
        t.set('model.rotary_emb.inv_freq', f32([8]));
        t.set('model.layers.0.self_attn.rotary_emb.inv_freq', f32([8]));
        t.set('model.layers.1.self_attn.rotary_emb.inv_freq', f32([8]));
      },
    });
    const w = hfWeights(dir);
    expect(w.lmHead).toBe(w.embed); // the config ties them: the stored copy is not read
    expect(w.embed).toEqual(plain.embed);
    expect(w.layers.length).toBe(2);
    expect(w.layers[1].qkv).toEqual(plain.layers[1].qkv);
  });

  test('not tolerated: a tied lm_head.weight of the wrong shape, an inv_freq of a layer past the config', async () => {
    const bad = await loadError(variant('llama-mha-tied', { tensors: (t) => t.set('lm_head.weight', f32([10, 64])) }));
    expect(bad.message).toMatch(/lm_head\.weight: shape \[10,64\] does not match the expected \[512,64\]/);

    const past = await loadError(
      variant('llama-mha-tied', { tensors: (t) => t.set('model.layers.2.self_attn.rotary_emb.inv_freq', f32([8])) }),
    );
    expect(past.message).toMatch(/1 unused tensor: model\.layers\.2\.\* \(1 tensor\)/);
  });

  test('sharded checkpoints: every shard tensor counts, listed in the index or not', async () => {
    const dir = variant('llama-gqa');
    const all = readTensors(path.join(dir, 'model.safetensors'));
    rmSync(path.join(dir, 'model.safetensors'));
    const shards: Tensors[] = [new Map(), new Map()];
    const weightMap: Record<string, string> = {};
    [...all].forEach(([name, t], i) => {
      shards[i % 2].set(name, t);
      weightMap[name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
    });
    shards[1].set('model.extra.weight', f32([4])); // in a shard, not in the index
    shards.forEach((s, i) => {
      writeTensors(path.join(dir, `model-0000${i + 1}-of-00002.safetensors`), s);
    });
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    const err = await loadError(dir);
    expect(err.message).toMatch(/1 unused tensor: model\.extra\.weight \(file /);
    expect(err.file).toBe(path.join(dir, 'model.safetensors.index.json'));

    shards[1].delete('model.extra.weight');
    writeTensors(path.join(dir, 'model-00002-of-00002.safetensors'), shards[1]);
    expect(hfWeights(dir).layers[1].down).toEqual(hfWeights(parityDir('llama-gqa')).layers[1].down);
  });

  test.each([0, 2])(
    'a non-finite value is named with its tensor and element, wherever the streamed load meets it (%i load workers)',
    async (loadWorkers) => {
      const last = 'model.layers.1.mlp.down_proj.weight'; // the last layer: read after every other graph was built
      const err = await loadError(
        variant('qwen2-qkv-bias', {
          tensors: (t) => {
            const down = t.get(last);
            if (!down) throw new Error(`no ${last}`);
            down.data.writeFloatLE(Number.NaN, 4 * 7);
          },
        }),
        loadWorkers,
      );
      expect(err.message).toMatch(/non-finite value at element 7/);
      expect(err.tensor).toBe(last);
      expect(err.file).toMatch(/model\.safetensors$/);
      const bf16 = await loadError(
        variant('qwen2-qkv-bias', {
          tensors: (t) => {
            const embed = toBf16(t, 'model.embed_tokens.weight');
            embed.data.writeUInt16LE(0xff80, 2 * 300); // -Infinity
          },
        }),
        loadWorkers,
      );
      expect(bf16.message).toMatch(/non-finite value at element 300/);
      expect(bf16.tensor).toBe('model.embed_tokens.weight');
    },
  );

  test('bf16 and f16 tensors load as the fp32 values they encode', () => {
    const plain = hfWeights(parityDir('qwen2-qkv-bias'));
    const dir = variant('qwen2-qkv-bias', {
      tensors: (t) => {
        toBf16(t, 'model.layers.1.self_attn.k_proj.weight');
        toBf16(t, 'model.embed_tokens.weight');
        const q = t.get('model.layers.0.self_attn.q_proj.bias');
        if (!q) throw new Error('no q bias');
        // 1/8 steps are exact in f16
        const values = Float32Array.from({ length: q.shape[0] }, (_, i) => (i - 20) / 8);
        t.set('model.layers.0.self_attn.q_proj.bias', {
          dtype: 'F16',
          shape: q.shape,
          data: Buffer.from(float32ArrayToFloat16Bits(values).buffer),
        });
        q.data = Buffer.from(values.buffer);
      },
    });
    const w = hfWeights(dir);
    const bf16 = (a: Float32Array) => {
      const bits = new Uint32Array(Float32Array.from(a).buffer);
      for (let i = 0; i < bits.length; i++) bits[i] &= 0xffff0000;
      return new Float32Array(bits.buffer);
    };
    const configPath = path.join(dir, 'config.json');
    const { numHeads: H, numKvHeads: Hkv, headDim: d, hiddenSize: h } = parseHfConfig(readJson(configPath), configPath);
    const k = (x: Float32Array) => x.subarray(H * d * h, (H + Hkv) * d * h);
    expect(k(w.layers[1].qkv)).toEqual(bf16(k(plain.layers[1].qkv)));
    expect(w.layers[1].qkv.subarray(0, H * d * h)).toEqual(plain.layers[1].qkv.subarray(0, H * d * h));
    expect(w.embed).toEqual(bf16(plain.embed));
    expect(w.lmHead).toBe(w.embed);
    expect(Array.from(w.layers[0].qkvBias?.subarray(0, H * d) ?? [])).toEqual(
      Array.from({ length: H * d }, (_, i) => (i - 20) / 8),
    );
  });

  test('layer_types with a length other than num_hidden_layers is a config error', async () => {
    const err = await loadError(variant('qwen2-qkv-bias', { config: { num_hidden_layers: 1 } }));
    expect(err.message).toMatch(/layer_types has 2 entries but num_hidden_layers is 1/);
    expect(err.file).toMatch(/config\.json$/);
  });
});

describe('llama2.c checkpoints: the file size must be exactly what the header implies', () => {
  const stories = readFileSync(path.join(storiesDir, 'stories260K.bin'));
  const storiesV1 = readFileSync(path.join(storiesDir, 'stories260K.v1.bin'));
  const write = (name: string, bytes: Buffer) => {
    const f = path.join(scratch, name);
    writeFileSync(f, bytes);
    return f;
  };

  test('extra bytes after the last tensor (version 0 and 1)', async () => {
    for (const [name, bytes] of [
      ['extra.bin', stories],
      ['extra.v1.bin', storiesV1],
    ] as const) {
      const err = await loadError(write(name, Buffer.concat([bytes, Buffer.alloc(4)])));
      expect(err.message).toMatch(/implies \d+: 4 extra bytes after the last tensor/);
    }
  });

  test('truncated by one float (version 1)', async () => {
    const err = await loadError(write('short.v1.bin', storiesV1.subarray(0, storiesV1.length - 4)));
    expect(err.message).toMatch(/implies \d+: 4 bytes short \(truncated/);
  });

  test('a header whose n_layers disagrees with the weights', async () => {
    // version 0 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (int32 each)
    const fewer = Buffer.from(stories);
    fewer.writeInt32LE(stories.readInt32LE(8) - 1, 8);
    expect((await loadError(write('fewer-layers.bin', fewer))).message).toMatch(/layers 4, .* extra bytes after/);
    const more = Buffer.from(stories);
    more.writeInt32LE(stories.readInt32LE(8) + 1, 8);
    expect((await loadError(write('more-layers.bin', more))).message).toMatch(/layers 6, .* bytes short/);
  });

  test('a version 1 file shorter than its 256-byte header', async () => {
    const err = await loadError(write('stub.v1.bin', storiesV1.subarray(0, 30)));
    expect(err.message).toMatch(/too short for a version 1 header/);
  });
});
