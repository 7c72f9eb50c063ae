import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Metrics } from '../metrics/metrics';

/** One finished gateway request, as the gateway saw it. */
export interface UsageEvent {
  projectId: string;
  apiKeyId: string;
  /** The model name the client sent. */
  model: string;
  /** What it resolved to (`adapter@vN`, a base model id, a provider model). */
  resolved: string;
  inputTokens: number;
  outputTokens: number;
  latencyMs: number;
  error: boolean;
  /** When it finished; now by default. */
  at?: number;
}

interface Counts {
  projectId: string;
  apiKeyId: string;
  model: string;
  resolved: string;
  minute: number;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  latencyMsSum: number;
}

/**
 * Usage metering off the hot path: `record` adds to an in-memory table (one entry per project, key, model, resolved
 * version and minute) and a timer adds the table to Postgres every USAGE_FLUSH_INTERVAL_MS (at most 5 s) in one
 * statement, then on a graceful stop. A process killed with -9 loses what it counted since its last flush, at most
 * one interval. A failed flush keeps its counts for the next one, so a Postgres outage delays usage, never drops it.
 * Several gateway replicas add to the same rows (increments, not overwrites).
 */
@Injectable()
export class UsageMeter implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(UsageMeter.name);
  private pending = new Map<string, Counts>();
  /**
   * `record`'s way into `pending` for one minute without spelling the entry's id per request: key id -> model ->
   * resolved -> the entry. Started over when the minute turns and whenever a flush takes `pending`.
   */
  private index = new Map<string, Map<string, Map<string, Counts>>>();
  private indexMinute = -1;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly prisma: PrismaService, private readonly config: Config, private readonly metrics: Metrics) {}

  onModuleInit() {
    this.timer = setInterval(() => void this.flush(), this.config.env.USAGE_FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Destroy hooks run dependents first, so Postgres is still connected here (PrismaService closes after). */
  async onModuleDestroy() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  record(e: UsageEvent): void {
    const minute = Math.floor((e.at ?? Date.now()) / 60_000) * 60_000;
    if (minute !== this.indexMinute) {
      this.index = new Map();
      this.indexMinute = minute;
    }
    let byModel = this.index.get(e.apiKeyId);
    if (!byModel) this.index.set(e.apiKeyId, (byModel = new Map()));
    let byResolved = byModel.get(e.model);
    if (!byResolved) byModel.set(e.model, (byResolved = new Map()));
    let c = byResolved.get(e.resolved);
    if (!c || c.projectId !== e.projectId) byResolved.set(e.resolved, (c = this.entry(e, minute)));
    c.requests += 1;
    if (e.error) c.errors += 1;
    c.inputTokens += e.inputTokens;
    c.outputTokens += e.outputTokens;
    c.latencyMsSum += e.latencyMs;
  }

  private entry(e: UsageEvent, minute: number): Counts {
    const id = `${e.projectId}\u0000${e.apiKeyId}\u0000${e.model}\u0000${e.resolved}\u0000${minute}`;
    let c = this.pending.get(id);
    if (!c) {
      c = { projectId: e.projectId, apiKeyId: e.apiKeyId, model: e.model, resolved: e.resolved, minute, requests: 0, errors: 0, inputTokens: 0, outputTokens: 0, latencyMsSum: 0 };
      this.pending.set(id, c);
    }
    return c;
  }

  /** Writes what was counted so far; flushes never overlap (the next waits for the one running). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.index = new Map(); // it points into `batch`: counts added there now would be lost
    const rows = [...batch.values()];
    const col = <K extends keyof Counts>(k: K) => rows.map((r) => r[k]);
    try {
      await this.prisma.$executeRaw`
        INSERT INTO "UsageBucket" ("projectId", "apiKeyId", "model", "resolved", "minute", "requests", "errors", "inputTokens", "outputTokens", "latencyMsSum")
        SELECT * FROM unnest(
          ${col('projectId')}::text[], ${col('apiKeyId')}::text[], ${col('model')}::text[], ${col('resolved')}::text[],
          ${rows.map((r) => new Date(r.minute))}::timestamp(3)[], ${col('requests')}::int[], ${col('errors')}::int[],
          ${col('inputTokens')}::bigint[], ${col('outputTokens')}::bigint[], ${col('latencyMsSum')}::float8[])
        ON CONFLICT ("projectId", "apiKeyId", "model", "resolved", "minute") DO UPDATE SET
          "requests" = "UsageBucket"."requests" + EXCLUDED."requests",
          "errors" = "UsageBucket"."errors" + EXCLUDED."errors",
          "inputTokens" = "UsageBucket"."inputTokens" + EXCLUDED."inputTokens",
          "outputTokens" = "UsageBucket"."outputTokens" + EXCLUDED."outputTokens",
          "latencyMsSum" = "UsageBucket"."latencyMsSum" + EXCLUDED."latencyMsSum"`;
      this.metrics.usageFlushes.inc({ result: 'ok' });
    } catch (err) {
      this.metrics.usageFlushes.inc({ result: 'failed' });
      // Put the counts back (merged with what came meanwhile) for the next flush.
      for (const [id, c] of batch) {
        const now = this.pending.get(id);
        if (!now) this.pending.set(id, c);
        else {
          now.requests += c.requests;
          now.errors += c.errors;
          now.inputTokens += c.inputTokens;
          now.outputTokens += c.outputTokens;
          now.latencyMsSum += c.latencyMsSum;
        }
      }
      this.logger.error({ err, rows: rows.length }, 'usage flush failed; kept for the next flush');
    }
  }
}
