import { Redis } from 'ioredis';
import { CorruptSnapshotError, StoreUnavailableError } from './errors.js';
import type { CacheMeta, SnapshotStore, StoreLimits } from './store.js';

/**
 * Cached documents in Redis, shared by every replica pointed at it. Per entry: `<prefix>meta:<id>` (JSON) and
 * `<prefix>blob:<id>` (the snapshot), written in one MULTI, both with the idle TTL, which every read renews. A sorted
 * set `<prefix>lru` (score = last use, ms) and a hash `<prefix>sizes` let any replica evict the least recently used
 * entries once the total passes the cap. Redis's own `maxmemory` may also evict a blob; its meta then reads as absent.
 *
 * Commands fail fast while Redis is unreachable (no offline queue, one retry), so a cache call answers 503 at once
 * instead of hanging; the client keeps reconnecting in the background and the store works again when Redis returns.
 */
export class RedisSnapshotStore implements SnapshotStore {
  readonly kind = 'redis';
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly limits: StoreLimits,
    private readonly prefix = 'semanticache:',
  ) {
    this.redis = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * times, 1000),
    });
    // connection errors surface as failed commands (503); the client logs nothing on its own
    this.redis.on('error', () => {});
  }

  private key(kind: 'meta' | 'blob', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  /** Waits up to a second for a connection in progress (at start, or reconnecting after Redis came back). */
  private ready(): Promise<void> {
    if (this.redis.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const timer = setTimeout(() => done(new Error(`not connected (${this.redis.status})`)), 1000);
      this.redis.once('ready', onReady);
    });
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      await this.ready();
      return await fn();
    } catch (cause) {
      if (cause instanceof CorruptSnapshotError) throw cause;
      throw new StoreUnavailableError(`the Redis cache store is unavailable (${what}): ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  async put(meta: CacheMeta, snapshot: Uint8Array): Promise<void> {
    if (snapshot.byteLength > this.limits.maxBytes) {
      throw new RangeError(
        `the snapshot is ${snapshot.byteLength} bytes, over the store's cap of ${this.limits.maxBytes}`,
      );
    }
    await this.call('put', async () => {
      const tx = this.redis.multi();
      const blob = Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
      if (this.limits.ttlSeconds > 0) {
        tx.set(this.key('blob', meta.id), blob, 'EX', this.limits.ttlSeconds);
        tx.set(this.key('meta', meta.id), JSON.stringify(meta), 'EX', this.limits.ttlSeconds);
      } else {
        tx.set(this.key('blob', meta.id), blob);
        tx.set(this.key('meta', meta.id), JSON.stringify(meta));
      }
      tx.zadd(`${this.prefix}lru`, Date.now(), meta.id);
      tx.hset(`${this.prefix}sizes`, meta.id, snapshot.byteLength);
      await tx.exec();
      await this.evict();
    });
  }

  async meta(id: string): Promise<CacheMeta | undefined> {
    return this.call('meta', async () => {
      const raw = await this.redis.get(this.key('meta', id));
      return raw === null ? undefined : (JSON.parse(raw) as CacheMeta);
    });
  }

  async get(id: string): Promise<{ meta: CacheMeta; snapshot: Uint8Array } | undefined> {
    return this.call('get', async () => {
      const [[, rawMeta], [, blob]] = (await this.redis
        .multi()
        .get(this.key('meta', id))
        .getBuffer(this.key('blob', id))
        .exec()) as [[null, string | null], [null, Buffer | null]];
      if (rawMeta === null || blob === null) return undefined;
      const meta = JSON.parse(rawMeta) as CacheMeta;
      if (blob.byteLength !== meta.snapshotBytes) {
        throw new CorruptSnapshotError(
          `the snapshot of cache ${id} is ${blob.byteLength} bytes, expected ${meta.snapshotBytes} (truncated)`,
        );
      }
      await this.markUsed(id);
      return { meta, snapshot: blob };
    });
  }

  async use(id: string): Promise<CacheMeta | undefined> {
    return this.call('use', async () => {
      const raw = await this.redis.get(this.key('meta', id));
      if (raw === null) return undefined;
      await this.markUsed(id);
      return JSON.parse(raw) as CacheMeta;
    });
  }

  private async markUsed(id: string): Promise<void> {
    const tx = this.redis.multi().zadd(`${this.prefix}lru`, Date.now(), id);
    if (this.limits.ttlSeconds > 0) {
      tx.expire(this.key('meta', id), this.limits.ttlSeconds).expire(this.key('blob', id), this.limits.ttlSeconds);
    }
    await tx.exec();
  }

  async delete(id: string): Promise<boolean> {
    return this.call('delete', async () => {
      const results = (await this.redis
        .multi()
        .del(this.key('meta', id))
        .del(this.key('blob', id))
        .zrem(`${this.prefix}lru`, id)
        .hdel(`${this.prefix}sizes`, id)
        .exec()) as [Error | null, number][];
      return results[0][1] > 0;
    });
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.redis.ping());
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  /** Drops entries whose keys expired, then the least recently used until the sizes fit the cap. */
  private async evict(): Promise<void> {
    const sizes = await this.redis.hgetall(`${this.prefix}sizes`);
    let total = 0;
    for (const v of Object.values(sizes)) total += Number(v);
    if (total <= this.limits.maxBytes && this.limits.ttlSeconds === 0) return;
    const oldest = await this.redis.zrange(`${this.prefix}lru`, 0, -1);
    for (const id of oldest) {
      const alive = (await this.redis.exists(this.key('meta', id))) === 1;
      if (alive && total <= this.limits.maxBytes) continue;
      total -= Number(sizes[id] ?? 0);
      await this.delete(id);
    }
  }
}
