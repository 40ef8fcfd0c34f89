import { truncateSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskSnapshotStore } from './disk-store.js';
import { CorruptSnapshotError, StoreUnavailableError } from './errors.js';
import { RedisSnapshotStore } from './redis-store.js';
import type { CacheMeta, SnapshotStore } from './store.js';
import { type RedisProcess, startRedis, tempDir } from './test-support.js';

let serial = 0;
function entry(bytes: number): { meta: CacheMeta; snapshot: Uint8Array } {
  const id = `cache_${(++serial).toString(16).padStart(32, '0')}`;
  const snapshot = new Uint8Array(bytes).map((_, i) => (i * 7 + serial) & 255);
  const meta: CacheMeta = {
    id,
    owner: 'owner',
    created: 1,
    model: 'm',
    kind: 'prompt',
    tokens: 10,
    entries: 5,
    bytes: { full: 100, compressed: 50 },
    policy: { name: 'full' },
    snapshotBytes: bytes,
    prefillMs: 1,
    compressMs: 0,
  };
  return { meta, snapshot };
}

/** Behaviour both stores share: round trip, delete, LRU eviction past the byte cap. */
function sharedCases(make: (limits: { maxBytes: number; ttlSeconds: number }) => SnapshotStore) {
  it('stores, reads back exactly and deletes', async () => {
    const store = make({ maxBytes: 10_000, ttlSeconds: 0 });
    const a = entry(1000);
    await store.put(a.meta, a.snapshot);
    expect(await store.meta(a.meta.id)).toEqual(a.meta);
    const got = await store.get(a.meta.id);
    expect(Buffer.from(got?.snapshot ?? []).equals(Buffer.from(a.snapshot))).toBe(true);
    expect(await store.delete(a.meta.id)).toBe(true);
    expect(await store.get(a.meta.id)).toBeUndefined();
    expect(await store.delete(a.meta.id)).toBe(false);
    await store.close();
  });

  it('evicts the least recently used entries past the byte cap, and refuses a blob over the cap', async () => {
    const store = make({ maxBytes: 2500, ttlSeconds: 0 });
    const [a, b, c] = [entry(1000), entry(1000), entry(1000)];
    await store.put(a.meta, a.snapshot);
    await new Promise((r) => setTimeout(r, 5));
    await store.put(b.meta, b.snapshot);
    await new Promise((r) => setTimeout(r, 5));
    await store.get(a.meta.id); // a is now more recent than b
    await new Promise((r) => setTimeout(r, 5));
    await store.put(c.meta, c.snapshot);
    expect(await store.meta(b.meta.id)).toBeUndefined();
    expect(await store.meta(a.meta.id)).toBeDefined();
    expect(await store.meta(c.meta.id)).toBeDefined();
    // use() (a worker holds the document) counts as a use too, without reading the blob: c becomes older than a
    await new Promise((r) => setTimeout(r, 5));
    expect(await store.use(a.meta.id)).toEqual(a.meta);
    expect(await store.use(b.meta.id)).toBeUndefined();
    const d = entry(1000);
    await store.put(d.meta, d.snapshot);
    expect(await store.meta(c.meta.id)).toBeUndefined();
    expect(await store.meta(a.meta.id)).toBeDefined();
    const big = entry(3000);
    await expect(store.put(big.meta, big.snapshot)).rejects.toThrow(RangeError);
    await store.close();
  });
}

describe('DiskSnapshotStore', () => {
  sharedCases((limits) => new DiskSnapshotStore(tempDir('sc-store-'), limits));

  it('survives a restart (a new store on the same directory)', async () => {
    const dir = tempDir('sc-store-');
    const a = entry(500);
    await new DiskSnapshotStore(dir, { maxBytes: 10_000, ttlSeconds: 0 }).put(a.meta, a.snapshot);
    const reopened = new DiskSnapshotStore(dir, { maxBytes: 10_000, ttlSeconds: 0 });
    expect((await reopened.get(a.meta.id))?.meta).toEqual(a.meta);
    expect(reopened.heldBytes).toBe(500);
  });

  it('refuses a truncated blob instead of returning part of it', async () => {
    const dir = tempDir('sc-store-');
    const store = new DiskSnapshotStore(dir, { maxBytes: 10_000, ttlSeconds: 0 });
    const a = entry(800);
    await store.put(a.meta, a.snapshot);
    truncateSync(path.join(dir, `${a.meta.id}.bin`), 300);
    await expect(store.get(a.meta.id)).rejects.toThrow(CorruptSnapshotError);
    await expect(store.get(a.meta.id)).rejects.toThrow(/300 bytes, expected 800/);
  });

  it('drops entries unused for longer than the TTL', async () => {
    const dir = tempDir('sc-store-');
    const a = entry(100);
    await new DiskSnapshotStore(dir, { maxBytes: 10_000, ttlSeconds: 60 }).put(a.meta, a.snapshot);
    const old = new Date(Date.now() - 120_000);
    utimesSync(path.join(dir, `${a.meta.id}.json`), old, old);
    const reopened = new DiskSnapshotStore(dir, { maxBytes: 10_000, ttlSeconds: 60 });
    expect(await reopened.meta(a.meta.id)).toBeUndefined();
    await reopened.close();
  });
});

describe('RedisSnapshotStore', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  let prefix = 0;
  sharedCases((limits) => new RedisSnapshotStore(redis.url, limits, `t${++prefix}:`));

  it('sets the idle TTL on both keys, and says it is unavailable (fast) while Redis is down', async () => {
    const store = new RedisSnapshotStore(redis.url, { maxBytes: 10_000, ttlSeconds: 100 }, 'ttl:');
    const a = entry(10);
    await store.put(a.meta, a.snapshot);
    const { Redis } = await import('ioredis');
    const probe = new Redis(redis.url);
    expect(await probe.ttl(`ttl:blob:${a.meta.id}`)).toBeGreaterThan(90);
    expect(await probe.ttl(`ttl:meta:${a.meta.id}`)).toBeGreaterThan(90);
    probe.disconnect();
    await store.close();

    const dead = new RedisSnapshotStore('redis://127.0.0.1:1', { maxBytes: 10_000, ttlSeconds: 0 });
    await expect(dead.ping()).rejects.toThrow(StoreUnavailableError);
    await expect(dead.get(a.meta.id)).rejects.toThrow(/Redis cache store is unavailable/);
    await dead.close();
  });
});
