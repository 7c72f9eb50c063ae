import { ChangeFeed } from './change-feed';

interface Entry {
  value: unknown;
  at: number;
}

/**
 * Answers of a read kept in memory for hot GETs (a job polled by a CI pipeline, the models list), forgotten as soon
 * as the change feed names one of `tables` and in any case after `maxAgeMs`, so a read is never staler than that
 * bound even when a notification is lost. A load that was running while a change came in is returned to its caller
 * but not kept (it may predate the change). Until `start()` (and in roles without the feed) every read goes to the
 * database. Keys must carry the tenant (projectId) themselves: one entry never answers another project.
 */
export class ReadThroughCache {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  private live = false;

  constructor(
    private readonly tables: ReadonlySet<string>,
    private readonly maxAgeMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  async start(feed: ChangeFeed): Promise<void> {
    await feed.subscribe((table) => {
      if (table === '*' || this.tables.has(table)) this.invalidate();
    });
    this.live = true;
  }

  stop(): void {
    this.live = false;
    this.invalidate();
  }

  /** Forgets everything: after a change in this process, so its own next read does not wait for the notification. */
  invalidate(): void {
    this.generation++;
    this.entries.clear();
  }

  /** `key` names the read and its parameters (one key, one shape of value); a load that throws is not kept. */
  async get<V>(key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.maxAgeMs) return hit.value as V;
    const generation = this.generation;
    const value = await load();
    if (this.live && generation === this.generation) {
      // Map keeps insertion order: the first key is the oldest entry.
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.delete(key);
      this.entries.set(key, { value, at: now });
    }
    return value;
  }
}
