import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { POLICIES, SnapshotError } from '@semanticache/kv-cache';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DisposedError, SessionBusyError } from './errors.js';
import type { GenerateOptions } from './generation.js';
import { loadModel, type Model } from './model.js';
import type { CachePolicy } from './policy.js';
import { Session } from './session.js';
import { SESSION_SNAPSHOT_VERSION } from './session-snapshot.js';
import { demoDir, maxAbsDiff, repoRoot, storiesDir } from './test-support.js';

const corpus = readFileSync(path.join(repoRoot, 'packages', 'runtime', 'bench', 'corpus.txt'), 'utf8');

async function collect(session: Session, prompt: string | number[], options: GenerateOptions) {
  const ids: number[] = [];
  let text = '';
  for await (const ev of session.generate(prompt, options)) {
    ids.push(ev.tokenId);
    text += ev.text;
  }
  return { ids, text, finishReason: session.lastFinishReason };
}

let model: Model;
let prompt: number[]; // ~600 tokens of real prose
beforeAll(async () => {
  model = await loadModel(demoDir);
  prompt = model.tokenizer!.encode(corpus.slice(3000, 5400));
});
afterAll(() => model.dispose());

describe('forward pass', () => {
  test('native kernel matches the TypeScript reference attention; fp16 cache stays close', async () => {
    const reference = await loadModel(demoDir, { attention: 'reference' });
    const ids = prompt.slice(0, 300);
    const a = await model.createSession({ kvDtype: 'float32', prefillBlock: 128 }).prefill(ids);
    const b = await reference.createSession({ kvDtype: 'float32', prefillBlock: 128 }).prefill(ids);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    const half = await model.createSession({ kvDtype: 'float16' }).prefill(ids);
    expect(maxAbsDiff(a, half)).toBeLessThan(1e-2); // measured 1.4e-3
    await reference.dispose();
  });

  test('block size does not change the result; decodeStep continues a prefill exactly', async () => {
    const ids = prompt.slice(0, 200);
    const whole = await model.createSession({ kvDtype: 'float32', prefillBlock: 512 }).prefill(ids);
    const blocks = await model.createSession({ kvDtype: 'float32', prefillBlock: 37 }).prefill(ids);
    expect(maxAbsDiff(whole, blocks)).toBeLessThan(1e-4);
    const stepwise = model.createSession({ kvDtype: 'float32' });
    await stepwise.prefill(ids.slice(0, 199));
    expect(maxAbsDiff(await stepwise.decodeStep(ids[199]), whole)).toBeLessThan(1e-4);
    expect(stepwise.position).toBe(200);
  });
});

describe('generation', () => {
  test('multi-turn: the cache is kept between turns and equals feeding everything at once', async () => {
    const s = model.createSession();
    const first = await collect(s, prompt.slice(0, 100), { maxTokens: 8, temperature: 0, ignoreEos: true });
    const second = await collect(s, prompt.slice(100, 140), { maxTokens: 8, temperature: 0, ignoreEos: true });
    const one = model.createSession();
    const all = [...prompt.slice(0, 100), ...first.ids, ...prompt.slice(100, 140)];
    const again = await collect(one, all, { maxTokens: 8, temperature: 0, ignoreEos: true });
    expect(second.ids).toEqual(again.ids);
    expect(s.position).toBe(one.position);
  });

  test('seeded sampling is reproducible; different seeds differ; top-k 1 is greedy', async () => {
    const opts = { maxTokens: 24, temperature: 1, topP: 0.9, seed: 7, ignoreEos: true };
    const a = await collect(model.createSession(), prompt.slice(0, 64), opts);
    const b = await collect(model.createSession(), prompt.slice(0, 64), opts);
    const c = await collect(model.createSession(), prompt.slice(0, 64), { ...opts, seed: 8 });
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
    const greedy = await collect(model.createSession(), prompt.slice(0, 64), { maxTokens: 12, temperature: 0 });
    const topK1 = await collect(model.createSession(), prompt.slice(0, 64), {
      maxTokens: 12,
      temperature: 1.5,
      topK: 1,
      seed: 3,
    });
    expect(topK1.ids).toEqual(greedy.ids);
  });

  test('text events add up to the decoded ids; stop strings cut the text; stop ids end the stream', async () => {
    const tok = model.tokenizer!;
    const free = await collect(model.createSession(), 'The old man walked slowly', {
      maxTokens: 40,
      temperature: 0,
      ignoreEos: true,
    });
    expect(free.text).toBe(tok.decode(free.ids));
    expect(free.finishReason).toBe('length');
    // stop at a word the free run produced
    const word = free.text.trim().split(/\s+/)[3];
    const stopped = await collect(model.createSession(), 'The old man walked slowly', {
      maxTokens: 40,
      temperature: 0,
      stop: [word],
    });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(word)));
    const byId = await collect(model.createSession(), 'The old man walked slowly', {
      maxTokens: 40,
      temperature: 0,
      stop: [free.ids[5]],
    });
    expect(byId.finishReason).toBe('stop');
    expect(byId.ids).toEqual(free.ids.slice(0, 6));
  });

  test('an abort signal ends the stream', async () => {
    const controller = new AbortController();
    const s = model.createSession();
    let n = 0;
    for await (const _ of s.generate(prompt.slice(0, 32), {
      maxTokens: 100,
      temperature: 0,
      signal: controller.signal,
    })) {
      if (++n === 3) controller.abort();
    }
    expect(n).toBe(3);
    expect(s.lastFinishReason).toBe('abort');
    // the session is usable afterwards
    const more = await collect(s, [], { maxTokens: 2, temperature: 0 });
    expect(more.ids.length).toBeGreaterThan(0);
  });

  test('an abort during a long prompt stops it at the next block, uncompressed, and the session goes on', async () => {
    const s = model.createSession({ prefillBlock: 64, policy: { name: 'semanticache', budget: { ratio: 0.5 } } });
    // aborted once two blocks are in: the signal is read before every block
    let reads = 0;
    const signal = {
      get aborted() {
        return reads++ >= 2;
      },
    } as unknown as AbortSignal;
    const cut = await collect(s, prompt, { maxTokens: 8, temperature: 0, signal });
    expect(cut.ids).toEqual([]);
    expect(cut.finishReason).toBe('abort');
    expect(s.position).toBe(128);
    const stats = s.stats();
    expect(stats.compressions).toBe(0);
    expect(Array.from(new Set(stats.entries))).toEqual([128]);
    // the rest of the prompt continues exactly where the cut left off
    const rest = await collect(s, prompt.slice(128), { maxTokens: 4, temperature: 0 });
    const whole = await collect(
      model.createSession({ policy: { name: 'semanticache', budget: { ratio: 0.5 } } }),
      prompt,
      {
        maxTokens: 4,
        temperature: 0,
      },
    );
    expect(s.position).toBe(prompt.length + 3);
    expect(rest.ids).toEqual(whole.ids);
  });

  test('a second call while generating is refused', async () => {
    const s = model.createSession();
    const it = s.generate(prompt.slice(0, 16), { maxTokens: 4, temperature: 0 });
    await it.next();
    await expect(s.decodeStep(5)).rejects.toThrow(SessionBusyError);
    await it.return(undefined);
    await expect(s.decodeStep(5)).resolves.toBeInstanceOf(Float32Array);
  });

  test('multi-byte UTF-8 split over byte-fallback tokens streams as whole characters', async () => {
    const stories = await loadModel(path.join(storiesDir, 'stories260K.bin'));
    const tok = stories.tokenizer!;
    const ids = tok.encode('Tom saw a 😀 and a café.');
    expect(ids.filter((id) => id >= 3 && id < 259).length).toBeGreaterThanOrEqual(4); // emoji as 4 byte tokens
    const { StreamDecoder } = await import('./generation.js');
    const stream = new StreamDecoder(tok, ids.slice(0, 1));
    const parts = ids.slice(1).map((id) => stream.push(id));
    expect(parts.join('')).toBe('Tom saw a 😀 and a café.');
    expect(parts.some((p) => p.includes('\uFFFD'))).toBe(false);
    await stories.dispose();
  });
});

describe('cache policies', () => {
  const greedy = { maxTokens: 24, temperature: 0, ignoreEos: true };

  test('semanticache with τ = 1 reproduces the full-cache token stream exactly', async () => {
    const full = await collect(model.createSession(), prompt, greedy);
    const s = model.createSession({ policy: { name: 'semanticache', options: { threshold: 1 } } });
    const tau1 = await collect(s, prompt, greedy);
    expect(tau1.ids).toEqual(full.ids);
    expect(s.stats().compressions).toBe(1);
  });

  test('semanticache at ratio 0.75 removes ¾ of the compressible entries; positions keep counting', async () => {
    const s = model.createSession({ policy: { name: 'semanticache', budget: { ratio: 0.75 } } });
    await s.prefill(prompt);
    const st = s.stats();
    const n = prompt.length;
    // every layer meets the budget in total (per head too: the default gives each head the same number of seats)
    const H = model.config.numKvHeads;
    for (let l = 0; l < model.config.numLayers; l++) {
      const layer = st.entries.slice(l * H, (l + 1) * H).reduce((a, b) => a + b, 0);
      expect(layer).toBeLessThanOrEqual(H * (Math.floor(n * 0.25) + 1));
    }
    expect(st.position).toBe(n);
    expect(st.bytes.current).toBeLessThan(0.3 * st.bytes.full);
    const before = s.stats().entries[0];
    await s.decodeStep(5);
    expect(s.stats().entries[0]).toBe(before + 1);
    expect(s.lastCompression?.entriesAfter).toBeLessThanOrEqual(H * model.config.numLayers * Math.floor(n * 0.25));
    expect(s.position).toBe(n + 1);
    // the compressed model still predicts the continuation far better than chance (ln 8192 ≈ 9.0)
    const next = model.tokenizer!.encode(corpus.slice(5400, 5800));
    const { nll } = await s.score(next);
    expect(nll).toBeLessThan(6);
  });

  const withImportance: CachePolicy[] = [
    { name: 'snapkv', budget: { ratio: 0.5 } },
    { name: 'h2o', budget: { ratio: 0.5 } },
    { name: 'chunkkv', budget: { ratio: 0.5 } },
    { name: 'merge-values', budget: { ratio: 0.5 } },
    { name: 'streaming-llm', budget: { ratio: 0.5 } },
    {
      name: 'semanticache',
      budget: { ratio: 0.5 },
      options: { preset: 'paper', seedOrder: 'importance', coreWeights: 'importance' },
    },
    { name: 'semanticache', budget: { ratio: 0.5 }, options: { preset: 'adaptive-heads' } },
  ];
  for (const policy of withImportance) {
    test(`${policy.name}${policy.options ? ` ${JSON.stringify(policy.options)}` : ''}: attention mass collected, budget met`, async () => {
      const s = model.createSession({ policy });
      await s.prefill(prompt);
      const half = Math.floor(prompt.length * 0.5);
      // per layer in total: adaptive head budgets trade seats between a layer's heads
      const H = model.config.numKvHeads;
      const { entries } = s.stats();
      for (let l = 0; l < model.config.numLayers; l++) {
        expect(entries.slice(l * H, (l + 1) * H).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(H * half);
      }
      const out = await collect(s, [], { maxTokens: 4, temperature: 0, ignoreEos: true });
      expect(out.ids.length).toBe(4);
    });
  }

  test('decode-time trigger keeps every head at most maxEntries', async () => {
    const s = model.createSession({
      policy: { name: 'snapkv' },
      compressTrigger: { maxEntries: 200, targetEntries: 150 },
    });
    await s.prefill(prompt.slice(0, 180));
    expect(s.stats().compressions).toBe(0);
    await collect(s, [], { maxTokens: 40, temperature: 0, ignoreEos: true });
    expect(s.stats().compressions).toBeGreaterThan(0);
    for (const e of s.stats().entries) expect(e).toBeLessThanOrEqual(200);
    expect(s.position).toBe(180 + 40 - 1); // the last sampled token is pending, not fed
  });

  test('a budget is a ceiling: short and medium prompts compress what they can under every policy', async () => {
    const cells = model.config.numLayers * model.config.numKvHeads;
    const short = model.tokenizer!.encode('The kernel scheduler decides which task runs next.');
    const medium = prompt.slice(0, 100);
    for (const name of POLICIES) {
      for (const [ids, budget] of [
        [short, { ratio: 0.75 }],
        [medium, { ratio: 0.99 }],
        [medium, { maxEntries: 36 }],
      ] as const) {
        const s = model.createSession({ policy: { name, budget } as CachePolicy });
        const out = await collect(s, ids, { maxTokens: 2, temperature: 0, ignoreEos: true });
        expect(out.ids.length).toBe(2);
        if (name === 'full') continue;
        // every head keeps its 36 protected entries (+ one core for the merging policies), and says when that is
        // more than the budget
        const floor = Math.min(ids.length, 36 + (name === 'semanticache' || name === 'merge-values' ? 1 : 0));
        const target = 'ratio' in budget ? Math.floor(ids.length * (1 - budget.ratio)) : budget.maxEntries;
        const label = `${name} ${ids.length} ${JSON.stringify(budget)}`;
        expect(s.lastCompression?.headsAboveBudget, label).toBe(floor > target ? cells : 0);
        expect(s.lastCompression?.entriesAfter, label).toBe(cells * floor);
      }
    }
  });

  test('a ratio is a share of the tokens seen: 20 turns keep it steady instead of compounding', async () => {
    const H = model.config.numKvHeads;
    for (const policy of [
      { name: 'semanticache', budget: { ratio: 0.5 } },
      { name: 'snapkv', budget: { ratio: 0.5 } },
    ] as CachePolicy[]) {
      const s = model.createSession({ policy });
      for (let turn = 0; turn < 20; turn++) {
        await collect(s, prompt.slice(turn * 25, turn * 25 + 25), { maxTokens: 3, temperature: 0, ignoreEos: true });
        const seen = s.lastCompression ? s.position - 2 : s.position; // two sampled tokens fed since the prompt
        const { entries } = s.stats();
        if (seen < 2 * 36) continue; // the protected entries still exceed half
        for (let l = 0; l < model.config.numLayers; l++) {
          const layer = entries.slice(l * H, (l + 1) * H).reduce((a, b) => a + b, 0) - 2 * H;
          expect(layer, `${policy.name} turn ${turn} layer ${l}`).toBe(H * Math.floor(seen * 0.5));
        }
      }
      expect(s.position).toBe(20 * 25 + 19 * 3 + 2);
      s.dispose();
    }
  });

  test('policy options are checked when the session is created, naming the option', () => {
    const bad: [CachePolicy, RegExp][] = [
      [{ name: 'semanticache', options: { threshold: 5 } }, /policy\.options\.threshold: expected a cosine/],
      [{ name: 'snapkv', budget: { ratio: 0.5 }, options: { sinkTokens: -1 } }, /policy\.options\.sinkTokens/],
      [{ name: 'h2o', budget: { ratio: 0.5 }, options: { recentWindw: 8 } as never }, /recentWindw: not an option/],
      [{ name: 'snapkv', budget: { ratio: 0.5 }, options: { delimiterLevel: 'clause' } as never }, /delimiterLevel/],
      [
        { name: 'semanticache', budget: { ratio: 0.5 }, options: { delimiterLevel: 'word' as never } },
        /delimiterLevel/,
      ],
      [{ name: 'semanticache', budget: { ratio: 0.5 }, options: { tokenIds: [1] } as never }, /session supplies it/],
      [{ name: 'chunkkv', options: { budget: { ratio: 0.5 } } as never }, /give the budget as policy\.budget/],
      [{ name: 'semanticache', budget: { ratio: 0.5 }, options: { preset: 'nope' as never } }, /preset/],
    ];
    for (const [policy, message] of bad) expect(() => model.createSession({ policy }), message.source).toThrow(message);
    const s = model.createSession({ compressTrigger: 'manual' });
    expect(() => s.compress({ name: 'snapkv', budget: { ratio: 0.5 }, options: { poolKernal: 3 } as never })).toThrow(
      /poolKernal/,
    );
    expect(s.position).toBe(0);
  });

  test('invalid policies are refused up front', () => {
    expect(() => model.createSession({ policy: { name: 'nope' } as never })).toThrow(TypeError);
    expect(() => model.createSession({ policy: { name: 'snapkv' } })).toThrow(/needs a budget/);
    expect(() => model.createSession({ policy: { name: 'h2o', budget: { ratio: 1 } } })).toThrow(RangeError);
    expect(() => model.createSession({ compressTrigger: { maxEntries: 0 } })).toThrow(RangeError);
  });
});

describe('snapshots', () => {
  test('a restored session continues exactly like the original', async () => {
    const policy: CachePolicy = { name: 'h2o', budget: { ratio: 0.5 } };
    const s = model.createSession({ policy });
    await collect(s, prompt.slice(0, 300), { maxTokens: 5, temperature: 0, ignoreEos: true });
    const bytes = s.snapshot();
    const { Session } = await import('./session.js');
    const restored = Session.restore(model, bytes, { policy });
    expect(restored.position).toBe(s.position);
    const a = await collect(s, prompt.slice(300, 340), { maxTokens: 10, temperature: 0, ignoreEos: true });
    const b = await collect(restored, prompt.slice(300, 340), { maxTokens: 10, temperature: 0, ignoreEos: true });
    expect(b.ids).toEqual(a.ids);
    const corrupt = bytes.slice();
    corrupt[0] ^= 0xff;
    expect(() => Session.restore(model, corrupt)).toThrow(/bad-magic/);
    expect(() => Session.restore(model, bytes.subarray(0, bytes.length - 10))).toThrow(/snapshot rejected/);
  });

  test('a snapshot restores from a file, a Buffer and any Uint8Array view', async () => {
    const policy: CachePolicy = { name: 'snapkv', budget: { ratio: 0.5 } };
    const s = model.createSession({ policy });
    await collect(s, prompt.slice(0, 120), { maxTokens: 3, temperature: 0, ignoreEos: true });
    const bytes = s.snapshot();
    const dir = mkdtempSync(path.join(tmpdir(), 'scsn-'));
    try {
      writeFileSync(path.join(dir, 'session.bin'), bytes);
      const padded = new Uint8Array(bytes.length + 3);
      padded.set(bytes, 3);
      const views = [readFileSync(path.join(dir, 'session.bin')), Buffer.from(bytes), padded.subarray(3)];
      const expected = await collect(s, prompt.slice(120, 140), { maxTokens: 6, temperature: 0, ignoreEos: true });
      for (const view of views) {
        const restored = Session.restore(model, view, { policy });
        const out = await collect(restored, prompt.slice(120, 140), { maxTokens: 6, temperature: 0, ignoreEos: true });
        expect(out.ids).toEqual(expected.ids);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every byte of a snapshot is covered: each one flipped is rejected, and nothing is built', async () => {
    const tiny = await loadModel(path.join(storiesDir, 'stories260K.bin'));
    const s = tiny.createSession({ policy: { name: 'h2o', budget: { ratio: 0.5 } }, kvDtype: 'float16' });
    await collect(s, [1, 400, 300, 200, 100, 50, 60, 70], { maxTokens: 2, temperature: 0, ignoreEos: true });
    const bytes = s.snapshot();
    const copy = bytes.slice();
    let rejected = 0;
    for (let i = 0; i < copy.length; i++) {
      copy[i] ^= 0xff;
      try {
        Session.restore(tiny, copy);
      } catch (err) {
        if (err instanceof SnapshotError) rejected++;
        else throw err;
      }
      copy[i] ^= 0xff;
    }
    expect(rejected).toBe(bytes.length);
    expect(Session.restore(tiny, copy).position).toBe(s.position);
    await tiny.dispose();
  });

  test('the format version is checked: a future or past format is refused with a clear error', async () => {
    const s = model.createSession();
    await s.prefill(prompt.slice(0, 10));
    const bytes = s.snapshot();
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(SESSION_SNAPSHOT_VERSION);
    for (const version of [SESSION_SNAPSHOT_VERSION + 1, 1]) {
      const other = bytes.slice();
      new DataView(other.buffer).setUint32(4, version, true);
      expect(() => Session.restore(model, other)).toThrow(
        version > SESSION_SNAPSHOT_VERSION ? /unsupported-version.*newer.*upgrade/ : /unsupported-version.*older/,
      );
    }
  });

  test('a restored session under a policy that reads no attention mass compresses again and again', async () => {
    const probe = model.createSession({
      policy: { name: 'snapkv', budget: { ratio: 0.5 } },
      compressTrigger: 'manual',
    });
    await probe.prefill(prompt.slice(0, 200));
    const { Session } = await import('./session.js');
    for (const policy of [
      { name: 'streaming-llm', budget: { ratio: 0.5 } },
      { name: 'semanticache', budget: { ratio: 0.5 }, options: { preset: 'paper' } },
    ] as CachePolicy[]) {
      const fork = Session.restore(model, probe.snapshot(), { policy, compressTrigger: 'manual' });
      fork.compress();
      await fork.score(prompt.slice(200, 260));
      const second = fork.compress();
      expect(second.entriesAfter).toBeLessThan(second.entriesBefore);
      fork.dispose();
    }
    probe.dispose();
  });
});

describe('collecting every mass table', () => {
  test("a probe with collectMass 'all' forks (or restores) into h2o, snapkv and semanticache exactly as their own sessions", async () => {
    const { Session } = await import('./session.js');
    const probe = model.createSession({ collectMass: 'all', compressTrigger: 'manual' });
    await probe.prefill(prompt.slice(0, 300));
    for (const policy of [
      { name: 'h2o', budget: { ratio: 0.6 } },
      { name: 'snapkv', budget: { ratio: 0.6 } },
      { name: 'semanticache', budget: { ratio: 0.6 } },
    ] as CachePolicy[]) {
      const own = model.createSession({ policy, compressTrigger: 'manual' });
      await own.prefill(prompt.slice(0, 300));
      own.compress();
      const restored = Session.restore(model, probe.snapshot(), { policy, compressTrigger: 'manual' });
      const fork = probe.fork({ policy, compressTrigger: 'manual' });
      const a = await own.score(prompt.slice(300, 340));
      for (const copy of [restored, fork]) {
        copy.compress();
        const b = await copy.score(prompt.slice(300, 340));
        expect(Array.from(b.logProbs)).toEqual(Array.from(a.logProbs));
        copy.dispose();
      }
      own.dispose();
    }
    // the forks left the probe as it was; a fork checks its options like a new session
    expect(probe.position).toBe(300);
    expect(() => probe.fork({ policy: { name: 'nope' } as never })).toThrow(/policy\.name/);
    probe.dispose();
    expect(() => probe.fork()).toThrow(/disposed/);
    expect(() => model.createSession({ collectMass: 'some' as never })).toThrow(/collectMass/);
  });
});

describe('context window', () => {
  test('a prompt longer than max_position_embeddings is refused before any work', async () => {
    const s = model.createSession();
    const long = new Array(8193).fill(100);
    const it = s.generate(long, { maxTokens: 1 });
    await expect(it.next()).rejects.toThrow(/context overflow/);
    expect(s.position).toBe(0);
  });
});

describe('lifecycle', () => {
  test('a disposed session refuses every call, an open stream included, with DisposedError', async () => {
    const s = model.createSession();
    const stream = s.generate(prompt.slice(0, 20), { maxTokens: 10, temperature: 0, ignoreEos: true });
    await stream.next();
    s.dispose();
    await expect(stream.next()).rejects.toThrow(DisposedError);
    expect(() => s.stats()).toThrow(DisposedError);
    expect(() => s.snapshot()).toThrow(DisposedError);
    expect(() => s.fork()).toThrow(DisposedError);
    await expect(s.prefill([1, 2])).rejects.toThrow(DisposedError);
  });

  test('disposing the model mid-generation ends it with DisposedError; restore on it is refused', async () => {
    const own = await loadModel(demoDir);
    const s = own.createSession();
    await s.prefill(prompt.slice(0, 50));
    const bytes = s.snapshot();
    const stream = s.generate(prompt.slice(50, 400), { maxTokens: 10, temperature: 0, ignoreEos: true });
    const first = stream.next();
    const disposing = own.dispose();
    await expect(first).rejects.toThrow(DisposedError);
    await disposing;
    expect(() => Session.restore(own, bytes)).toThrow(DisposedError);
    expect(() => own.createSession()).toThrow(DisposedError);
  });

  test("return() ends a stream at once with 'abort'; a dropped stream frees the session when collected", async () => {
    const s = model.createSession();
    const stream = s.generate(prompt.slice(0, 20), { maxTokens: 10, temperature: 0, ignoreEos: true });
    await stream.next();
    expect(() => s.snapshot()).toThrow(SessionBusyError);
    await stream.return(undefined);
    expect(s.lastFinishReason).toBe('abort');
    expect(s.snapshot().length).toBeGreaterThan(0);

    await (async () => {
      const dropped = s.generate([], { maxTokens: 10, temperature: 0, ignoreEos: true });
      await dropped.next();
    })();
    expect(() => s.snapshot()).toThrow(SessionBusyError);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    let freed = false;
    for (let i = 0; i < 50 && !freed; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
      try {
        s.snapshot();
        freed = true;
      } catch (err) {
        if (!(err instanceof SessionBusyError)) throw err;
      }
    }
    expect(freed).toBe(true);
    expect(s.lastFinishReason).toBe('abort');
    const next = await collect(s, [], { maxTokens: 2, temperature: 0, ignoreEos: true });
    expect(next.finishReason).toBe('length');
  });
});
