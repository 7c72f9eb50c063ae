import { Logger } from '@nestjs/common';
import { ChangeFeed } from './change-feed';

/**
 * An in-memory copy of some Postgres rows that hot paths read without a query: loaded at start, reloaded when the
 * change feed names one of its tables (coalesced: one load in flight, one more queued if a change came during it),
 * and fully every `refreshMs` besides, in case a notification was lost.
 */
export class LiveSnapshot<T> {
  private current: T;
  private inFlight: Promise<void> | null = null;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly logger: Logger;
  /** When the last successful load started (ms epoch); what it holds is at least that fresh. */
  loadedAt = 0;

  constructor(
    name: string,
    initial: T,
    private readonly load: () => Promise<T>,
    private readonly tables: ReadonlySet<string>,
  ) {
    this.current = initial;
    this.logger = new Logger(name);
  }

  get value(): T {
    return this.current;
  }

  async start(feed: ChangeFeed, refreshMs: number): Promise<void> {
    await feed.subscribe((table) => {
      if (table === '*' || this.tables.has(table)) void this.refresh();
    });
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Resolves once a load that started after this call has finished (or failed and was logged). */
  refresh(): Promise<void> {
    if (this.inFlight) {
      this.dirty = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.dirty = false;
        const startedAt = Date.now();
        try {
          this.current = await this.load();
          this.loadedAt = startedAt;
        } catch (err) {
          // Keep serving the last good copy; the next change or the periodic refresh tries again.
          this.logger.warn({ error: (err as Error).message }, 'reload failed; serving the previous copy');
        }
      } while (this.dirty);
      this.inFlight = null;
    })();
    return this.inFlight;
  }
}
