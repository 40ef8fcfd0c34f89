import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ContextOverflowError, ModelLoadError } from './errors.js';
import { loadModel } from './model.js';
import { SafetensorsFile } from './safetensors.js';
import { parityDir, storiesDir } from './test-support.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'runtime-errors-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of a parity checkpoint, with `edit` applied to its files. */
function variant(name: string, edit: (dir: string) => void): string {
  const dir = mkdtempSync(path.join(scratch, `${name}-`));
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) {
    copyFileSync(path.join(parityDir(name), f), path.join(dir, f));
  }
  edit(dir);
  return dir;
}

function rewriteHeader(
  file: string,
  edit: (header: Record<string, { shape: number[]; data_offsets: number[] }>) => void,
): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
  edit(header);
  let json = JSON.stringify(header);
  json += ' '.repeat(n - json.length); // keep the data offsets valid
  if (json.length !== n) throw new Error('edited header grew');
  writeFileSync(file, Buffer.concat([bytes.subarray(0, 8), Buffer.from(json), bytes.subarray(8 + n)]));
}

async function loadError(dir: string): Promise<ModelLoadError> {
  const err = await loadModel(dir, { attention: 'reference' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelLoadError);
  return err as ModelLoadError;
}

describe('loading bad checkpoints', () => {
  test('missing directory', async () => {
    const err = await loadError(path.join(scratch, 'does-not-exist'));
    expect(err.message).toMatch(/no such file/);
  });

  test('folder without weights', async () => {
    const dir = variant('llama-gqa', (d) => rmSync(path.join(d, 'model.safetensors')));
    expect((await loadError(dir)).message).toMatch(/no model\.safetensors/);
  });

  test('corrupt header length', async () => {
    const dir = variant('llama-gqa', (d) => {
      const f = path.join(d, 'model.safetensors');
      const bytes = readFileSync(f);
      bytes.writeBigUInt64LE(1n << 40n, 0);
      writeFileSync(f, bytes);
    });
    const err = await loadError(dir);
    expect(err.message).toMatch(/invalid header length/);
    expect(err.file).toBe(path.join(dir, 'model.safetensors'));
  });

  test('header that is not JSON', async () => {
    const dir = variant('llama-gqa', (d) => {
      const f = path.join(d, 'model.safetensors');
      const bytes = readFileSync(f);
      bytes.write('{{{{', 8);
      writeFileSync(f, bytes);
    });
    expect((await loadError(dir)).message).toMatch(/not valid JSON/);
  });

  test('offsets past the end of the file', async () => {
    const dir = variant('llama-gqa', (d) =>
      rewriteHeader(path.join(d, 'model.safetensors'), (h) => {
        h['model.norm.weight'].data_offsets = [0, 1e9];
      }),
    );
    const err = await loadError(dir);
    expect(err.tensor).toBe('model.norm.weight');
    expect(err.message).toMatch(/past the end/);
  });

  test('shape × dtype that does not match the byte range', async () => {
    const dir = variant('llama-gqa', (d) =>
      rewriteHeader(path.join(d, 'model.safetensors'), (h) => {
        h['model.norm.weight'].shape = [65];
      }),
    );
    expect((await loadError(dir)).message).toMatch(/needs 260 bytes, got 256/);
  });

  test('tensor with the wrong shape for the config', async () => {
    const dir = variant('llama-gqa', (d) => {
      const f = path.join(d, 'config.json');
      const c = JSON.parse(readFileSync(f, 'utf8'));
      c.intermediate_size = 128;
      writeFileSync(f, JSON.stringify(c));
    });
    const err = await loadError(dir);
    expect(err.tensor).toBe('model.layers.0.mlp.gate_proj.weight');
    expect(err.message).toMatch(/\[160,64\] does not match the expected \[128,64\]/);
  });

  test('missing tensor', async () => {
    const dir = variant('llama-gqa', (d) =>
      rewriteHeader(path.join(d, 'model.safetensors'), (h) => {
        h.renamed = h['lm_head.weight'];
        delete h['lm_head.weight'];
      }),
    );
    expect((await loadError(dir)).tensor).toBe('lm_head.weight');
  });

  test('unsupported model_type', async () => {
    const dir = variant('llama-gqa', (d) => {
      const f = path.join(d, 'config.json');
      writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), model_type: 'gpt2' }));
    });
    expect((await loadError(dir)).message).toMatch(/unsupported model_type "gpt2"/);
  });

  test('truncated llama2.c checkpoint', async () => {
    const f = path.join(scratch, 'truncated.bin');
    writeFileSync(f, readFileSync(path.join(storiesDir, 'stories260K.bin')).subarray(0, 5000));
    expect((await loadError(f)).message).toMatch(/implies 1056540/);
  });

  test('direct reader rejects a short file', () => {
    const f = path.join(scratch, 'short.safetensors');
    writeFileSync(f, Buffer.from([1, 2, 3]));
    expect(() => new SafetensorsFile(f)).toThrow(ModelLoadError);
  });
});

describe('bad requests', () => {
  test('prompt longer than the context, ids outside the vocabulary, invalid options', async () => {
    const model = await loadModel(parityDir('llama-gqa'), { attention: 'reference' });
    const session = model.createSession();
    await expect(session.prefill(new Array(513).fill(5))).rejects.toThrow(ContextOverflowError);
    expect(session.position).toBe(0); // nothing was fed
    await expect(session.prefill([1, 512])).rejects.toThrow(/ids\[1\]: token id 512 is outside/);
    await expect(session.prefill([1, Number.NaN])).rejects.toThrow(RangeError);
    await expect(session.decodeStep(-1)).rejects.toThrow(RangeError);
    const first = async (opts: object) => {
      for await (const _ of session.generate([1, 2, 3], opts)) break;
    };
    await expect(first({ temperature: -1 })).rejects.toThrow(/temperature/);
    await expect(first({ maxTokens: 0 })).rejects.toThrow(/maxTokens/);
    await expect(first({ topP: 2 })).rejects.toThrow(/topP/);
    await expect(first({ seed: 0 })).rejects.toThrow(/seed/);
    await expect(first({ topK: 1.5 })).rejects.toThrow(/topK/);
    await expect(first({ stop: [{}] })).rejects.toThrow(TypeError);
    expect(() => model.createSession({ prefillBlock: 0 })).toThrow(/prefillBlock/);
    expect(() => model.createSession({ kvDtype: 'int8' as never })).toThrow(/kvDtype/);
    // a string prompt needs a tokenizer: these fixtures have none
    await expect(first({})).resolves.toBeUndefined();
    await expect(
      (async () => {
        for await (const _ of model.createSession().generate('hello')) break;
      })(),
    ).rejects.toThrow(/no tokenizer/);
    await model.dispose();
    expect(() => model.createSession()).toThrow(/disposed/);
  });
});
