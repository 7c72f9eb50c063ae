import { Injectable, OnModuleDestroy } from '@nestjs/common';
import Redis from 'ioredis';
import { Config } from '../config/config';
import { redisOptions } from '../queue/redis-options';
import { Limits, LimitVerdict, verdictOf } from './rate-limits';

/**
 * Requests-per-minute and tokens-per-minute limits shared by every gateway replica: one token bucket per (key or
 * project, requests or tokens) in Redis, refilled continuously at limit/60 per second (OpenAI's model: a limit is a
 * rate, not a calendar minute, so a burst at 12:00:59 does not get a fresh allowance at 12:01:00).
 *
 * `admit` is one round trip: a Lua script checks every bucket that applies and debits all of them or none, on Redis's
 * clock (replicas' clocks may drift). Tokens are not known before the answer, so `admit` debits an estimate and
 * `settle` adds the difference once the usage is known (a refund when the answer was shorter). A bucket can go into
 * debt that way; later requests then wait until it refills, which keeps the tokens per minute at the limit.
 */
const ADMIT = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local n = #KEYS
local state = {}
local denied = false
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local cost = tonumber(ARGV[2 * i])
  local rate = limit / 60000
  local stored = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t = tonumber(stored[1]) or limit
  local ts = tonumber(stored[2]) or nowMs
  t = math.min(limit, t + math.max(0, nowMs - ts) * rate)
  state[i] = t
  if t < math.min(cost, limit) then denied = true end
end
local out = { denied and 0 or 1 }
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local cost = tonumber(ARGV[2 * i])
  local t = state[i]
  if not denied then
    t = t - cost
    redis.call('HSET', KEYS[i], 't', tostring(t), 'ts', nowMs)
    redis.call('PEXPIRE', KEYS[i], math.ceil((limit - t) / (limit / 60000)) + 1000)
  end
  table.insert(out, tostring(t))
end
return out
`;

const SETTLE = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local delta = tonumber(ARGV[2 * i])
  local rate = limit / 60000
  local stored = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t = tonumber(stored[1]) or limit
  local ts = tonumber(stored[2]) or nowMs
  t = math.min(limit, t + math.max(0, nowMs - ts) * rate) - delta
  t = math.min(limit, t)
  redis.call('HSET', KEYS[i], 't', tostring(t), 'ts', nowMs)
  redis.call('PEXPIRE', KEYS[i], math.ceil((limit - t) / rate) + 1000)
end
return 1
`;

interface Bucket {
  key: string;
  kind: 'requests' | 'tokens';
  limit: number;
  cost: number;
}

type LimiterRedis = Redis & {
  lpAdmit(numKeys: number, ...args: (string | number)[]): Promise<string[]>;
  lpSettle(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

@Injectable()
export class RateLimiter implements OnModuleDestroy {
  private readonly redis: LimiterRedis;
  private readonly prefix: string;

  constructor(config: Config) {
    const redis = new Redis({ ...redisOptions(config.env.REDIS_URL), lazyConnect: true, maxRetriesPerRequest: 2 });
    redis.defineCommand('lpAdmit', { lua: ADMIT });
    redis.defineCommand('lpSettle', { lua: SETTLE });
    this.redis = redis as LimiterRedis;
    this.prefix = `${config.env.QUEUE_PREFIX}:ratelimit`;
  }

  /**
   * Admits a request of `estimatedTokens` against every limit that is set, or refuses it with how long to wait.
   * No limit set: no round trip at all.
   */
  async admit(limits: Limits, estimatedTokens: number): Promise<LimitVerdict> {
    const buckets = this.buckets(limits, estimatedTokens);
    if (buckets.length === 0) return { allowed: true, retryAfterMs: 0, headers: {} };
    const args = buckets.flatMap((b) => [b.limit, b.cost]);
    const [ok, ...left] = await this.redis.lpAdmit(buckets.length, ...buckets.map((b) => b.key), ...args);
    return verdictOf(
      Number(ok) === 1,
      buckets.map((b, i) => ({ kind: b.kind, limit: b.limit, cost: b.cost, remaining: Number(left[i]) })),
    );
  }

  /** The answer used `actualTokens` where admit debited `estimatedTokens`: debit (or refund) the difference. */
  async settle(limits: Limits, estimatedTokens: number, actualTokens: number): Promise<void> {
    const delta = actualTokens - estimatedTokens;
    const buckets = this.buckets(limits, delta).filter((b) => b.kind === 'tokens');
    if (buckets.length === 0 || delta === 0) return;
    await this.redis.lpSettle(buckets.length, ...buckets.map((b) => b.key), ...buckets.flatMap((b) => [b.limit, b.cost]));
  }

  async onModuleDestroy() {
    await this.redis.quit().catch(() => this.redis.disconnect());
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
