import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CorruptSnapshotError, StoreUnavailableError } from './errors.js';
import { CACHE_ID_PATTERN, type CacheMeta, type SnapshotStore, type StoreLimits } from './store.js';

interface Entry {
  bytes: number;
  /** ms since epoch of the last use */
  used: number;
}

/**
 * Cached documents in a directory: `<id>.bin` (the session snapshot) and `<id>.json` (its meta), each written to a
 * temporary name and renamed, the meta last, so a crash never leaves an entry that looks complete. An index of sizes
 * and last-use times is rebuilt from the directory at start (file mtimes), so entries survive a restart.
 */
export class DiskSnapshotStore implements SnapshotStore {
  readonly kind = 'disk';
  private entries = new Map<string, Entry>();
  private total = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly limits: StoreLimits,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      const id = name.slice(0, -'.json'.length);
      if (!name.endsWith('.json') || !CACHE_ID_PATTERN.test(id)) continue;
      try {
        const bin = statSync(this.file(id, 'bin'));
        this.entries.set(id, { bytes: bin.size, used: statSync(this.file(id, 'json')).mtimeMs });
        this.total += bin.size;
      } catch {
        // a meta without its blob: an interrupted delete; ignored (and overwritten if the id ever comes back)
      }
    }
    if (limits.ttlSeconds > 0) {
      this.sweeper = setInterval(() => this.sweep().catch(() => undefined), Math.min(60_000, limits.ttlSeconds * 1000));
      this.sweeper.unref();
    }
    this.sweep().catch(() => undefined);
  }

  private file(id: string, ext: 'bin' | 'json'): string {
    return path.join(this.dir, `${id}.${ext}`);
  }

  async put(meta: CacheMeta, snapshot: Uint8Array): Promise<void> {
    if (snapshot.byteLength > this.limits.maxBytes) {
      throw new RangeError(
        `the snapshot is ${snapshot.byteLength} bytes, over the store's cap of ${this.limits.maxBytes}`,
      );
    }
    const tmp = `.${meta.id}.${process.pid}.tmp`;
    try {
      await writeFile(path.join(this.dir, `${tmp}.bin`), snapshot);
      await rename(path.join(this.dir, `${tmp}.bin`), this.file(meta.id, 'bin'));
      await writeFile(path.join(this.dir, `${tmp}.json`), JSON.stringify(meta));
      await rename(path.join(this.dir, `${tmp}.json`), this.file(meta.id, 'json'));
    } catch (cause) {
      throw new StoreUnavailableError(`cannot write to the cache directory ${this.dir}: ${(cause as Error).message}`, {
        cause,
      });
    }
    this.entries.set(meta.id, { bytes: snapshot.byteLength, used: Date.now() });
    this.total += snapshot.byteLength;
    await this.evict();
  }

  async meta(id: string): Promise<CacheMeta | undefined> {
    if (!this.live(id)) return undefined;
    try {
      return JSON.parse(await readFile(this.file(id, 'json'), 'utf8')) as CacheMeta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CorruptSnapshotError(`the meta of cache ${id} cannot be read: ${(err as Error).message}`);
    }
  }

  async get(id: string): Promise<{ meta: CacheMeta; snapshot: Uint8Array } | undefined> {
    const meta = await this.meta(id);
    if (!meta) return undefined;
    let snapshot: Buffer;
    try {
      snapshot = await readFile(this.file(id, 'bin'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (snapshot.byteLength !== meta.snapshotBytes) {
      throw new CorruptSnapshotError(
        `the snapshot of cache ${id} is ${snapshot.byteLength} bytes, expected ${meta.snapshotBytes} (truncated)`,
      );
    }
    await this.markUsed(id);
    return { meta, snapshot };
  }

  async use(id: string): Promise<CacheMeta | undefined> {
    const meta = await this.meta(id);
    if (meta) await this.markUsed(id);
    return meta;
  }

  private async markUsed(id: string): Promise<void> {
    const now = new Date();
    const entry = this.entries.get(id);
    if (entry) entry.used = now.getTime();
    await utimes(this.file(id, 'json'), now, now).catch(() => undefined);
  }

  async delete(id: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    this.total -= entry.bytes;
    // meta first: without it the entry no longer exists, whatever happens to the blob
    await rm(this.file(id, 'json'), { force: true });
    await rm(this.file(id, 'bin'), { force: true });
    return true;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  /** Bytes held now (snapshots only). */
  get heldBytes(): number {
    return this.total;
  }

  private live(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    if (this.limits.ttlSeconds > 0 && Date.now() - entry.used > this.limits.ttlSeconds * 1000) {
      this.delete(id).catch(() => undefined); // best effort: the entry has already left the index
      return false;
    }
    return true;
  }

  private async sweep(): Promise<void> {
    for (const id of [...this.entries.keys()]) this.live(id);
    await this.evict();
  }

  /** Least recently used first, until the total fits the cap. */
  private async evict(): Promise<void> {
    if (this.total <= this.limits.maxBytes) return;
    const byAge = [...this.entries].sort((a, b) => a[1].used - b[1].used);
    for (const [id] of byAge) {
      if (this.total <= this.limits.maxBytes) break;
      await this.delete(id);
    }
  }
}
