import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { Config } from '../config/config';
import { redisOptions } from '../queue/redis-options';
import { LEASE_MS, leaseFor, LocalAllowances } from './local-allowance';
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
 * Under a large limit a gateway also takes a small allowance ahead of use and admits from it in memory
 * (local-allowance.ts); small limits are decided in Redis, request by request.
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
/** Keys and projects whose bucket names are kept; past this the cache starts over. */
const MAX_NAMES = 10_000;

@Injectable()
export class RateLimiter implements OnModuleDestroy {
  private readonly logger = new Logger(RateLimiter.name);
  private readonly redis: LimiterRedis;
  private readonly prefix: string;
  private readonly local = new LocalAllowances();
  private readonly sweep: NodeJS.Timeout;
  private admits: QueuedAdmit[] = [];
  /** An admission call is out (at most one at a time: the next batch forms while it is). */
  private admitting = false;
  /** bucket key -> its limit and the tokens still to debit (negative: refund) */
  private settlements = new Map<string, { limit: number; delta: number }>();
  private settling: Promise<void> | null = null;
  private readonly keyNames = new Map<string, { requests: string; tokens: string }>();
  private readonly projectNames = new Map<string, { requests: string; tokens: string }>();
  private readonly giveBack = (key: string, limit: number, tokens: number) => void this.queueDelta(key, limit, -tokens).catch((err: Error) => this.lost(err));

  constructor(config: Config) {
    const redis = new Redis({ ...redisOptions(config.env.REDIS_URL), lazyConnect: true, maxRetriesPerRequest: 2 });
    redis.defineCommand('lpAdmitBatch', { lua: ADMIT_BATCH });
    redis.defineCommand('lpSettle', { lua: SETTLE });
    this.redis = redis as LimiterRedis;
    this.prefix = `${config.env.QUEUE_PREFIX}:ratelimit`;
    this.sweep = setInterval(() => this.local.expire(Date.now(), this.giveBack), LEASE_MS);
    this.sweep.unref();
  }

  /**
   * Admits a request of `estimatedTokens` against every limit that is set, or refuses it with how long to wait.
   * No limit set, or this gateway holds enough of every bucket: no round trip.
   */
  admit(limits: Limits, estimatedTokens: number): Promise<LimitVerdict> {
    const buckets = this.buckets(limits, estimatedTokens);
    const verdict = this.fromAllowance(buckets);
    return verdict ? Promise.resolve(verdict) : this.admitInRedis(buckets);
  }

  /**
   * The verdict when it needs no round trip (no limit set, or this gateway holds enough of every bucket), at once
   * and without a promise: most requests under a large limit end here. Null: ask Redis (`admit`).
   */
  admitInMemory(limits: Limits, estimatedTokens: number): LimitVerdict | null {
    return this.fromAllowance(this.buckets(limits, estimatedTokens));
  }

  private fromAllowance(buckets: Bucket[]): LimitVerdict | null {
    if (buckets.length === 0) return { allowed: true, retryAfterMs: 0, headers: {} };
    const left = this.local.take(buckets, Date.now());
    return left ? verdictOf(true, buckets.map((b, i) => ({ kind: b.kind, limit: b.limit, cost: b.cost, remaining: left[i] }))) : null;
  }

  private admitInRedis(buckets: Bucket[]): Promise<LimitVerdict> {
    return new Promise((resolve, reject) => {
      // The first request of a turn schedules the call and the others of that turn join it; while a call is out,
      // everything that comes meanwhile waits for its answer and goes in the next one (busier: bigger batches).
      if (this.admits.push({ buckets, resolve, reject }) === 1 && !this.admitting) setImmediate(() => void this.sendAdmits());
    });
  }

  /**
   * The answer used `actualTokens` where admit debited `estimatedTokens`: debit (or refund) the difference. A debit
   * this gateway's allowance covers is done at once (null: nothing to wait for, the usual case); the rest is summed
   * per bucket and written every SETTLE_BATCH_MS, and the batch's promise is returned: it rejects when Redis failed.
   */
  settle(limits: Limits, estimatedTokens: number, actualTokens: number): Promise<void> | null {
    const delta = actualTokens - estimatedTokens;
    if (delta === 0) return null;
    const now = Date.now();
    let written: Promise<void> | null = null;
    for (const b of this.buckets(limits, delta)) {
      // A refund goes to Redis, where every gateway sees it; a debit comes out of what this one holds if it can.
      if (b.kind !== 'tokens' || (delta > 0 && this.local.spend(b.key, delta, now))) continue;
      written = this.queueDelta(b.key, b.limit, delta);
    }
    return written;
  }

  async onModuleDestroy() {
    clearInterval(this.sweep);
    this.local.expire(Date.now(), this.giveBack, true);
    await this.settling?.catch((err: Error) => this.logger.warn({ error: err.message }, 'rate limiter: settlements lost at stop'));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private queueDelta(key: string, limit: number, delta: number): Promise<void> {
    const s = this.settlements.get(key);
    if (s) {
      s.limit = limit;
      s.delta += delta;
    } else this.settlements.set(key, { limit, delta });
    this.settling ??= new Promise<void>((resolve) => setTimeout(resolve, SETTLE_BATCH_MS)).then(() => this.sendSettlements());
    return this.settling;
  }

  private lost(err: Error) {
    this.logger.warn({ error: err.message }, 'rate limiter: unused allowance could not be handed back');
  }

  private async sendAdmits(): Promise<void> {
    this.admitting = true;
    while (this.admits.length > 0) await this.admitBatch(this.admits.splice(0, MAX_BATCH));
    this.admitting = false;
  }

  /** Never rejects: each request gets its verdict, or the error (the caller admits unchecked then). */
  private async admitBatch(batch: QueuedAdmit[]): Promise<void> {
    const index = new Map<string, number>();
    const keys: string[] = [];
    const args: number[] = [];
    for (const q of batch) {
      args.push(q.buckets.length);
      for (const b of q.buckets) {
        let k = index.get(b.key);
        if (k === undefined) index.set(b.key, (k = keys.push(b.key)));
        args.push(k, b.limit, b.cost, leaseFor(b.limit));
      }
    }
    try {
      const reply = await this.redis.lpAdmitBatch(keys.length, ...keys, ...args);
      const now = Date.now();
      let at = 0;
      for (const q of batch) {
        const allowed = Number(reply[at++]) === 1;
        const states = q.buckets.map((b) => {
          const level = Number(reply[at++]);
          const held = this.local.grant(b.key, b.limit, Number(reply[at++]), level, now, this.giveBack);
          return { kind: b.kind, limit: b.limit, cost: b.cost, remaining: level + held };
        });
        q.resolve(verdictOf(allowed, states));
      }
    } catch (err) {
      // A promise already resolved ignores this.
      for (const q of batch) q.reject(err as Error);
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
    const key = this.names('key', l.keyId);
    const project = this.names('project', l.projectId);
    if (l.key.rpm !== null) out.push({ key: key.requests, kind: 'requests', limit: l.key.rpm, cost: 1 });
    if (l.key.tpm !== null) out.push({ key: key.tokens, kind: 'tokens', limit: l.key.tpm, cost: tokens });
    if (l.project.rpm !== null) out.push({ key: project.requests, kind: 'requests', limit: l.project.rpm, cost: 1 });
    if (l.project.tpm !== null) out.push({ key: project.tokens, kind: 'tokens', limit: l.project.tpm, cost: tokens });
    return out;
  }

  /** The Redis keys of a key's or project's two buckets, spelled once (this runs per request). */
  private names(scope: 'key' | 'project', id: string): { requests: string; tokens: string } {
    const cache = scope === 'key' ? this.keyNames : this.projectNames;
    let n = cache.get(id);
    if (!n) {
      if (cache.size >= MAX_NAMES) cache.clear();
      cache.set(id, (n = { requests: `${this.prefix}:${scope}:${id}:requests`, tokens: `${this.prefix}:${scope}:${id}:tokens` }));
    }
    return n;
  }
}
