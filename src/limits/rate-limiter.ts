import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { Config } from '../config/config';
import { redisOptions } from '../queue/redis-options';
import { GiveBack, LEASE_MS, leaseFor, LimitPlan, SharedBucket } from './local-allowance';
import { ADMIT_BATCH, SETTLE } from './rate-limit.scripts';
import { BucketView, costOf, limitHeaders, Limits, LimitVerdict, verdictOf } from './rate-limits';

type LimiterRedis = Redis & {
  lpAdmitBatch(numKeys: number, ...args: (string | number)[]): Promise<(string | number)[]>;
  lpSettle(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

interface QueuedAdmit {
  plan: LimitPlan;
  tokens: number;
  resolve: (verdict: LimitVerdict) => void;
  reject: (err: Error) => void;
}

/** Settlements wait this long to be summed into one call (a later admission sees them at most this late). */
const SETTLE_BATCH_MS = 25;
/** Requests per admission call (the script's arguments stay a few thousand at most). */
const MAX_BATCH = 256;
/** Buckets kept; past this, those that hold no grant are dropped (a plan finds its bucket again on its next round trip). */
const MAX_BUCKETS = 20_000;

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
@Injectable()
export class RateLimiter implements OnModuleDestroy {
  private readonly logger = new Logger(RateLimiter.name);
  private readonly redis: LimiterRedis;
  private readonly prefix: string;
  /** Redis key -> the bucket, one object per bucket (local-allowance.ts says why). */
  private readonly shared = new Map<string, SharedBucket>();
  private readonly sweep: NodeJS.Timeout;
  private admits: QueuedAdmit[] = [];
  /** An admission call is out (at most one at a time: the next batch forms while it is). */
  private admitting = false;
  /** bucket key -> its limit and the tokens still to debit (negative: refund) */
  private settlements = new Map<string, { limit: number; delta: number }>();
  private settling: Promise<void> | null = null;
  private readonly giveBack: GiveBack = (b, tokens) => void this.queueDelta(b.key, b.limit, -tokens).catch((err: Error) => this.lost(err));

  constructor(config: Config) {
    const redis = new Redis({ ...redisOptions(config.env.REDIS_URL), lazyConnect: true, maxRetriesPerRequest: 2 });
    redis.defineCommand('lpAdmitBatch', { lua: ADMIT_BATCH });
    redis.defineCommand('lpSettle', { lua: SETTLE });
    this.redis = redis as LimiterRedis;
    this.prefix = `${config.env.QUEUE_PREFIX}:ratelimit`;
    this.sweep = setInterval(() => this.expireGrants(Date.now()), LEASE_MS);
    this.sweep.unref();
  }

  /**
   * The buckets `limits` applies, for admitting and settling under it; made once per set of limits and kept by the
   * caller (the gateway keeps one per API key).
   */
  plan(limits: Limits): LimitPlan {
    return new LimitPlan(this.bucketsOf(limits));
  }

  /**
   * Admits a request of `tokens` (its estimate) against every limit of the plan, or refuses it with how long to
   * wait. No limit set, or this gateway holds enough of every bucket: no round trip.
   */
  admit(plan: LimitPlan, tokens: number): Promise<LimitVerdict> {
    const headers = this.admitNow(plan, tokens);
    return headers ? Promise.resolve({ allowed: true, retryAfterMs: 0, headers }) : this.admitInRedis(plan, tokens);
  }

  /**
   * The admitted request's x-ratelimit-* headers when it needs no round trip (no limit set, or this gateway holds
   * enough of every bucket), at once and without a promise: most requests under a large limit end here. Null: ask
   * Redis (`admitInRedis`).
   */
  admitNow(plan: LimitPlan, tokens: number): Record<string, string> | null {
    return plan.take(tokens, Date.now()) ? limitHeaders(plan.buckets) : null;
  }

  /** Redis decides (for a caller that already found `admitNow` could not): batched with this turn's other requests. */
  admitInRedis(plan: LimitPlan, tokens: number): Promise<LimitVerdict> {
    return new Promise((resolve, reject) => {
      // The first request of a turn schedules the call and the others of that turn join it; while a call is out,
      // everything that comes meanwhile waits for its answer and goes in the next one (busier: bigger batches).
      if (this.admits.push({ plan, tokens, resolve, reject }) === 1 && !this.admitting) setImmediate(() => void this.sendAdmits());
    });
  }

  /**
   * The answer used `actualTokens` where admit debited `estimatedTokens`: debit (or refund) the difference. A debit
   * this gateway's allowance covers is done at once (null: nothing to wait for, the usual case); the rest is summed
   * per bucket and written every SETTLE_BATCH_MS, and the batch's promise is returned: it rejects when Redis failed.
   */
  settle(plan: LimitPlan, estimatedTokens: number, actualTokens: number): Promise<void> | null {
    const delta = actualTokens - estimatedTokens;
    if (delta === 0) return null;
    const now = Date.now();
    let written: Promise<void> | null = null;
    for (const b of plan.buckets) {
      // A refund goes to Redis, where every gateway sees it; a debit comes out of what this one holds if it can.
      if (b.kind !== 'tokens' || (delta > 0 && b.spend(delta, now))) continue;
      written = this.queueDelta(b.key, b.limit, delta);
    }
    return written;
  }

  async onModuleDestroy() {
    clearInterval(this.sweep);
    for (const b of this.shared.values()) b.expire(Date.now(), this.giveBack, true);
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
    const asked = Date.now();
    /** Buckets a grant is asked for in this call already: one per bucket, however many requests wait on it. */
    const leasing = new Set<string>();
    for (const q of batch) {
      // A bucket dropped from `shared` since the plan was made is found (or made) again: one object per bucket.
      q.plan.buckets = q.plan.buckets.map((b) => this.canonical(b));
      args.push(q.plan.buckets.length);
      for (const b of q.plan.buckets) {
        let k = index.get(b.key);
        if (k === undefined) index.set(b.key, (k = keys.push(b.key)));
        // A grant only where this gateway's live one falls short, and once per bucket and call: else a request sent
        // here for another bucket (a small limit, decided request by request) would take a grant of this one every
        // time, and a burst of N requests N grants, all held for as long as they live, out of the other gateways' reach.
        const cost = costOf(b.kind, q.tokens);
        const lease = b.covers(cost, asked) || leasing.has(b.key) ? 0 : leaseFor(b.limit);
        if (lease > 0) leasing.add(b.key);
        args.push(k, b.limit, cost, lease);
      }
    }
    try {
      const reply = await this.redis.lpAdmitBatch(keys.length, ...keys, ...args);
      const now = Date.now();
      let at = 0;
      for (const q of batch) {
        const allowed = Number(reply[at++]) === 1;
        for (const b of q.plan.buckets) {
          const level = Number(reply[at++]);
          b.grant(Number(reply[at++]), level, now, this.giveBack);
        }
        // Decided now, before the next request of the batch moves the same buckets.
        q.resolve(verdictOf(allowed, q.plan.buckets, q.tokens));
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

  private bucketsOf(l: Limits): SharedBucket[] {
    const key = `${this.prefix}:key:${l.keyId}`;
    const project = `${this.prefix}:project:${l.projectId}`;
    const out: SharedBucket[] = [];
    if (l.key.rpm !== null) out.push(this.bucket(`${key}:requests`, 'requests', l.key.rpm));
    if (l.key.tpm !== null) out.push(this.bucket(`${key}:tokens`, 'tokens', l.key.tpm));
    if (l.project.rpm !== null) out.push(this.bucket(`${project}:requests`, 'requests', l.project.rpm));
    if (l.project.tpm !== null) out.push(this.bucket(`${project}:tokens`, 'tokens', l.project.tpm));
    return out;
  }

  /** The one object of a bucket (its limit as the latest plan says: limits change). */
  private bucket(key: string, kind: BucketView['kind'], limit: number): SharedBucket {
    let b = this.shared.get(key);
    if (!b) this.shared.set(key, (b = new SharedBucket(key, kind, limit)));
    b.limit = limit;
    return b;
  }

  /** The bucket's one object: `b` itself, unless `shared` dropped it and another took its place (then that one). */
  private canonical(b: SharedBucket): SharedBucket {
    const known = this.shared.get(b.key);
    if (known) return known;
    this.shared.set(b.key, b);
    return b;
  }

  /** Hands back expired grants; past MAX_BUCKETS, forgets the buckets that hold nothing. */
  private expireGrants(now: number): void {
    const prune = this.shared.size > MAX_BUCKETS;
    for (const [key, b] of this.shared) {
      b.expire(now, this.giveBack);
      if (prune && b.held === 0) this.shared.delete(key);
    }
  }
}
