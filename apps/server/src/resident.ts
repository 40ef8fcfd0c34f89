import type { SessionOptions, WorkerModel, WorkerSession } from '@semanticache/runtime';

/**
 * Cached documents kept restored in their worker, so a question forks the document's session there instead of
 * reading, copying and restoring its snapshot again. Per worker, the `capacity` most recently used documents stay;
 * the store stays the authority on whether a document exists (callers check it first), and a deleted one is
 * dropped here too.
 */
export class ResidentDocuments {
  private readonly byWorker = new Map<WorkerModel, Map<string, WorkerSession>>();

  constructor(readonly capacity: number) {}

  /**
   * A fresh session continuing document `id` on `model`: forked from the resident copy, or, on a miss, restored from
   * `load()` (made resident when the capacity allows). The caller owns the returned session.
   */
  async open(
    model: WorkerModel,
    id: string,
    load: () => Promise<Uint8Array>,
    options: SessionOptions,
  ): Promise<{ session: WorkerSession; resident: boolean }> {
    const documents = this.byWorker.get(model) ?? new Map<string, WorkerSession>();
    this.byWorker.set(model, documents);
    const held = documents.get(id);
    if (held) {
      documents.delete(id); // re-inserted last: the map's order is the recency order
      documents.set(id, held);
      return { session: await held.fork(options), resident: true };
    }
    const restored = await model.restoreSession(await load(), options);
    if (this.capacity === 0) return { session: restored, resident: false };
    documents.set(id, restored);
    while (documents.size > this.capacity) {
      const [oldest, session] = documents.entries().next().value as [string, WorkerSession];
      documents.delete(oldest);
      await session.dispose().catch(() => undefined);
    }
    return { session: await restored.fork(options), resident: false };
  }

  /** Drops document `id` from every worker (it was deleted). */
  async forget(id: string): Promise<void> {
    for (const documents of this.byWorker.values()) {
      const session = documents.get(id);
      if (!session) continue;
      documents.delete(id);
      await session.dispose().catch(() => undefined);
    }
  }
}
