/**
 * Buffers rows and writes them in batches, in order, one batch at a time: one INSERT per row cannot keep up with a
 * chatty trainer or an eval with high concurrency. A batch is written when it is full or after `flushMs`, so rows
 * still appear live. A failed write is kept and rethrown by push/close, so the caller's task fails and is retried;
 * `write` must therefore be idempotent (ON CONFLICT DO NOTHING on a natural key).
 */
export class BatchedWriter<T> {
  private rows: T[] = [];
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly write: (rows: T[]) => Promise<void>, private readonly opts: { maxRows: number; flushMs: number }) {
    this.timer = setInterval(() => void this.flush(), opts.flushMs);
    this.timer.unref();
  }

  get pending(): number {
    return this.rows.length;
  }

  /**
   * Adds a row; when the batch is full, starts writing it and waits only for the batch before it, so producing rows
   * overlaps with one write in flight (and a producer faster than the database is slowed to its pace).
   */
  async push(row: T): Promise<void> {
    if (this.failure) throw this.failure;
    this.rows.push(row);
    if (this.rows.length >= this.opts.maxRows) {
      const previous = this.writing;
      void this.flush();
      await previous;
    }
  }

  /** Writes what is buffered; resolves once every batch so far is written (or has failed). */
  flush(): Promise<void> {
    const batch = this.rows.splice(0);
    if (batch.length > 0) {
      this.writing = this.writing.then(async () => {
        if (this.failure) return;
        try {
          await this.write(batch);
        } catch (err) {
          this.failure = err;
        }
      });
    }
    return this.writing;
  }

  /** Flushes the rest and stops the timer; throws the first failed write. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    if (this.failure) throw this.failure;
  }
}
