import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { Config } from '../config/config';
import { redisOptions } from '../queue/redis-options';
import { ADMIT_BATCH, SETTLE } from './rate-limit.scripts';
import { Limits, LimitVerdict, verdictOf } from './rate-limits';

/**
 * Requests-per-minute and tokens-per-minute limits shared by every gateway replica: one token bucket per (key or
 * project, requests or tokens) in Redis, refilled continuously at limit/60 per second (OpenAI's model: a limit is a
 * rate, not a calendar minute, so a burst at 12:00:59 does not get a fresh allowance at 12:01:00).
 *
 * Admission checks every bucket that applies and debits all of them or none, on Redis's clock (replicas' clocks may
 * drift). The requests that arrive in one turn of the event loop share one round trip (rate-limit.scripts.ts:
 * decided in arrival order, as separate calls would be): a Redis command costs the gateway more CPU than the rest
 * of a request, so one per request would be the gateway's biggest cost. Tokens are not known before the answer, so
 * admission debits an estimate and `settle` adds the difference once the usage is known (a refund when the answer
 * was shorter); settlements are summed per bucket and written every SETTLE_BATCH_MS in one call. A bucket can go
 * into debt that way; later requests then wait until it refills, which keeps the tokens per minute at the limit.
 */
interface Bucket {
  key: string;
  kind: 'requests' | 'tokens';
  limit: number;
  cost: number;
}

type LimiterRedis = Redis & {
  lpAdmitBatch(numKeys: number, ...args: (string | number)[]): Promise<(string | number)[]>;
  lpSettle(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

interface QueuedAdmit {
  buckets: Bucket[];
  resolve: (verdict: LimitVerdict) => void;
  reject: (err: Error) => void;
}

/** Settlements wait this long to be summed into one call (a later admission sees them at most this late). */
const SETTLE_BATCH_MS = 25;
/** Requests per admission call (the script's arguments stay a few thousand at most). */
const MAX_BATCH = 256;

@Injectable()
export class RateLimiter implements OnModuleDestroy {
  private readonly logger = new Logger(RateLimiter.name);
  private readonly redis: LimiterRedis;
  private readonly prefix: string;
  private admits: QueuedAdmit[] = [];
  /** bucket key -> its limit and the tokens still to debit (negative: refund) */
  private settlements = new Map<string, { limit: number; delta: number }>();
  private settling: Promise<void> | null = null;

  constructor(config: Config) {
    const redis = new Redis({ ...redisOptions(config.env.REDIS_URL), lazyConnect: true, maxRetriesPerRequest: 2 });
    redis.defineCommand('lpAdmitBatch', { lua: ADMIT_BATCH });
    redis.defineCommand('lpSettle', { lua: SETTLE });
    this.redis = redis as LimiterRedis;
    this.prefix = `${config.env.QUEUE_PREFIX}:ratelimit`;
  }

  /**
   * Admits a request of `estimatedTokens` against every limit that is set, or refuses it with how long to wait.
   * No limit set: no round trip at all.
   */
  admit(limits: Limits, estimatedTokens: number): Promise<LimitVerdict> {
    const buckets = this.buckets(limits, estimatedTokens);
    if (buckets.length === 0) return Promise.resolve({ allowed: true, retryAfterMs: 0, headers: {} });
    return new Promise((resolve, reject) => {
      // The first request of a turn schedules the call; the others of that turn join it.
      if (this.admits.push({ buckets, resolve, reject }) === 1) setImmediate(() => this.sendAdmits());
    });
  }

  /**
   * The answer used `actualTokens` where admit debited `estimatedTokens`: debit (or refund) the difference. Resolves
   * once it is written (with the others of its batch), and rejects with that batch when Redis failed.
   */
  settle(limits: Limits, estimatedTokens: number, actualTokens: number): Promise<void> {
    const delta = actualTokens - estimatedTokens;
    if (delta === 0) return Promise.resolve();
    let queued = false;
    for (const b of this.buckets(limits, delta)) {
      if (b.kind !== 'tokens') continue;
      const s = this.settlements.get(b.key);
      if (s) {
        s.limit = b.limit;
        s.delta += b.cost;
      } else this.settlements.set(b.key, { limit: b.limit, delta: b.cost });
      queued = true;
    }
    if (!queued) return Promise.resolve();
    this.settling ??= new Promise<void>((resolve) => setTimeout(resolve, SETTLE_BATCH_MS)).then(() => this.sendSettlements());
    return this.settling;
  }

  async onModuleDestroy() {
    await this.settling?.catch((err: Error) => this.logger.warn({ error: err.message }, 'rate limiter: settlements lost at stop'));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private sendAdmits(): void {
    const queued = this.admits;
    this.admits = [];
    for (let i = 0; i < queued.length; i += MAX_BATCH) void this.admitBatch(queued.slice(i, i + MAX_BATCH));
  }

  private async admitBatch(batch: QueuedAdmit[]): Promise<void> {
    const index = new Map<string, number>();
    const keys: string[] = [];
    const args: number[] = [];
    for (const q of batch) {
      args.push(q.buckets.length);
      for (const b of q.buckets) {
        let k = index.get(b.key);
        if (k === undefined) index.set(b.key, (k = keys.push(b.key)));
        args.push(k, b.limit, b.cost);
      }
    }
    let reply: (string | number)[];
    try {
      reply = await this.redis.lpAdmitBatch(keys.length, ...keys, ...args);
    } catch (err) {
      for (const q of batch) q.reject(err as Error);
      return;
    }
    let at = 0;
    for (const q of batch) {
      const allowed = Number(reply[at++]) === 1;
      q.resolve(verdictOf(allowed, q.buckets.map((b) => ({ kind: b.kind, limit: b.limit, cost: b.cost, remaining: Number(reply[at++]) }))));
    }
  }

  private async sendSettlements(): Promise<void> {
    const batch = this.settlements;
    this.settlements = new Map();
    this.settling = null;
    const keys = [...batch.keys()];
    const args = [...batch.values()].flatMap((s) => [s.limit, s.delta]);
    if (keys.length > 0) await this.redis.lpSettle(keys.length, ...keys, ...args);
  }

  private buckets(l: Limits, tokens: number): Bucket[] {
    const out: Bucket[] = [];
    const add = (scope: string, id: string, kind: Bucket['kind'], limit: number | null, cost: number) => {
      if (limit !== null) out.push({ key: `${this.prefix}:${scope}:${id}:${kind}`, kind, limit, cost });
    };
    add('key', l.keyId, 'requests', l.key.rpm, 1);
    add('key', l.keyId, 'tokens', l.key.tpm, tokens);
    add('project', l.projectId, 'requests', l.project.rpm, 1);
    add('project', l.projectId, 'tokens', l.project.tpm, tokens);
    return out;
  }
}
