import { randomBytes } from 'node:crypto';
import { Config } from '../../src/config/config';
import { RateLimiter } from '../../src/limits/rate-limiter';
import { Limits } from '../../src/limits/rate-limits';
import { testEnv } from '../support/app';

/**
 * The Redis token buckets, with two limiters standing for two gateway replicas (one connection each, one shared
 * prefix): what one admits, the other sees. The two-process test through real gateways is in the e2e tier.
 */
describe('RateLimiter (Redis)', () => {
  const config = Config.fromEnv(testEnv({ QUEUE_PREFIX: `rl${randomBytes(4).toString('hex')}` }));
  const a = new RateLimiter(config);
  const b = new RateLimiter(config);
  afterAll(async () => Promise.all([a.onModuleDestroy(), b.onModuleDestroy()]));
  /** What the gateway does: a plan per set of limits, per limiter (the buckets are each gateway's own objects). */
  const admit = (limiter: RateLimiter, l: Limits, tokens: number) => limiter.admit(limiter.plan(l), tokens);
  const limits = (over: Partial<Limits> = {}): Limits => ({
    projectId: `proj_${randomBytes(6).toString('hex')}`,
    keyId: `key_${randomBytes(6).toString('hex')}`,
    key: { rpm: null, tpm: null },
    project: { rpm: null, tpm: null },
    ...over,
  });

  it('admits everything without a round trip when no limit is set', async () => {
    const v = await admit(a, limits(), 1000);
    expect(v).toEqual({ allowed: true, retryAfterMs: 0, headers: {} });
  });

  it('shares a key RPM between two replicas and says when to come back', async () => {
    const l = limits({ key: { rpm: 10, tpm: null } });
    const verdicts = [];
    for (let i = 0; i < 10; i++) verdicts.push(await admit(i % 2 ? a : b, l, 5));
    expect(verdicts.every((v) => v.allowed)).toBe(true);
    expect(verdicts[0].headers).toMatchObject({ 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '9' });
    expect(verdicts[9].headers['x-ratelimit-remaining-requests']).toBe('0');
    const refused = await admit(a, l, 5);
    expect(refused.allowed).toBe(false);
    // One request refills in 6 s at 10 per minute (less the few ms the ten calls took).
    expect(refused.retryAfterMs).toBeGreaterThan(5000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(6000);
    expect(refused.headers['x-ratelimit-reset-requests']).toMatch(/^(59|60|5\d(\.\d+)?)s$|^1m0(\.\d+)?s$/);
    // The refusal debited nothing: the other replica is refused too, and a different key is not.
    expect((await admit(b, l, 5)).allowed).toBe(false);
    expect((await admit(b, { ...l, keyId: 'another' }, 5)).allowed).toBe(true);
  });

  it('decides a burst that shares one round trip in arrival order, as separate calls would', async () => {
    const l = limits({ key: { rpm: 3, tpm: null }, project: { rpm: 100, tpm: 1000 } });
    const burst = await Promise.all(Array.from({ length: 5 }, () => admit(a, l, 100)));
    expect(burst.map((v) => v.allowed)).toEqual([true, true, true, false, false]);
    expect(burst.slice(0, 3).map((v) => v.headers['x-ratelimit-remaining-requests'])).toEqual(['2', '1', '0']);
    // Refused requests debited nothing: the project's tokens went down by three requests' worth only.
    expect(burst[2].headers['x-ratelimit-remaining-tokens']).toBe('700');
    expect(burst[4].headers['x-ratelimit-remaining-tokens']).toBe('700');
  });

  it('caps the project over all its keys, and the tightest limit fills the headers', async () => {
    const base = limits({ project: { rpm: 3, tpm: null } });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await admit(a, { ...base, keyId: `key-${i}`, key: { rpm: 100, tpm: null } }, 1));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
    expect(results[1].headers['x-ratelimit-limit-requests']).toBe('3');
    expect(results[1].headers['x-ratelimit-remaining-requests']).toBe('1');
  });

  it('debits the token estimate at admission and settles the real count afterwards', async () => {
    const l = limits({ key: { rpm: null, tpm: 1000 } });
    const first = await admit(a, l, 300);
    expect(first.headers).toMatchObject({ 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '700' });
    await b.settle(b.plan(l), 300, 900); // the answer was longer than estimated: 600 more
    const second = await admit(a, l, 200);
    expect(second.allowed).toBe(false);
    expect(Number(second.headers['x-ratelimit-remaining-tokens'])).toBeLessThan(200);
    await a.settle(a.plan(l), 900, 100); // a refund of 800
    const third = await admit(b, l, 200);
    expect(third.allowed).toBe(true);
  });

  it('lets a request larger than the whole TPM through a full bucket (then the bucket is in debt)', async () => {
    const l = limits({ key: { rpm: null, tpm: 100 } });
    expect((await admit(a, l, 500)).allowed).toBe(true);
    const next = await admit(a, l, 1);
    expect(next.allowed).toBe(false);
    // 401 tokens of debt to get back to 1 token at 100 per minute: about 4 minutes.
    expect(next.retryAfterMs).toBeGreaterThan(200_000);
  });

  it('admits in memory, with no promise, once Redis granted this replica an allowance under a large limit', async () => {
    const l = limits({ key: { rpm: 100_000, tpm: null } });
    const plan = a.plan(l);
    expect(a.admitNow(plan, 1)).toBeNull(); // nothing held yet: Redis decides
    expect((await a.admit(plan, 1)).allowed).toBe(true); // ... and grants 1 % of the limit ahead of use
    const now = a.admitNow(plan, 1);
    expect(now).toMatchObject({ 'x-ratelimit-limit-requests': '100000' });
    expect(Number(now!['x-ratelimit-remaining-requests'])).toBeGreaterThan(99_000);
    // A plan made later for the same limits shares this replica's grant: one object per bucket.
    expect(a.admitNow(a.plan({ ...l }), 1)).not.toBeNull();
    expect(b.admitNow(b.plan(l), 1)).toBeNull(); // the other replica holds none of it
    expect(a.admitNow(a.plan(limits()), 1)).toEqual({}); // no limit at all
  });

  it('takes one grant per bucket, not one per request sent to Redis', async () => {
    // A small key RPM (no grant: every request goes to Redis) beside a large project TPM (grants of 1,000).
    const l = limits({ key: { rpm: 30, tpm: null }, project: { rpm: null, tpm: 100_000 } });
    const plan = a.plan(l);
    const tokens = plan.buckets.find((x) => x.kind === 'tokens')!;
    const verdicts = [];
    for (let i = 0; i < 3; i++) verdicts.push(await a.admit(plan, 100));
    expect(verdicts.every((v) => v.allowed)).toBe(true);
    // The grant of the first request covered the next two: still one grant out, less nothing (their tokens were
    // debited in Redis, where they were decided).
    expect(tokens.held).toBe(1000);
    // A burst under a large limit with nothing held: one grant for the whole call, not one per request.
    const big = limits({ key: { rpm: 100_000, tpm: null } });
    const burstPlan = b.plan(big);
    const burst = await Promise.all(Array.from({ length: 20 }, () => b.admit(burstPlan, 1)));
    expect(burst.every((v) => v.allowed)).toBe(true);
    expect(burstPlan.buckets[0].held).toBe(1000);
    // What the headers report never passes the limit (Redis refills its level while the grant is out).
    const remaining = burst.map((v) => Number(v.headers['x-ratelimit-remaining-requests']));
    expect(Math.max(...remaining)).toBeLessThanOrEqual(100_000);
    expect(remaining[0]).toBe(100_000 - 1);
  });
});
