import { apiCost, breakEven, DEFAULT_DAILY_VOLUMES, monthlyProjection, sameWorkUsdPer1m, selfHostedCost } from '../../src/evals/cost-model';
import { DEFAULT_PRICES } from '../../src/evals/prices';

describe('apiCost', () => {
  it('prices uncached input, cached input and output separately (o3-mini)', () => {
    // (150k x 1.10 + 50k x 0.55 + 300k x 4.40) / 1M = 0.165 + 0.0275 + 1.32 = $1.5125
    const c = apiCost(DEFAULT_PRICES['o3-mini'], { requests: 1000, input_tokens: 200_000, cached_input_tokens: 50_000, output_tokens: 300_000 });
    expect(c.usd_total).toBeCloseTo(1.5125, 10);
    expect(c.usd_per_request).toBeCloseTo(0.0015125, 12);
    expect(c.usd_per_1m_tokens).toBeCloseTo(3.025, 10); // 1.5125 / 500k tokens x 1M
  });

  it('is null per request and per token when nothing was measured', () => {
    expect(apiCost(DEFAULT_PRICES['o4-mini'], { requests: 0, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0 })).toEqual({ usd_total: 0, usd_per_request: null, usd_per_1m_tokens: null });
  });

  it('refuses cached tokens beyond the input and negative counts', () => {
    expect(() => apiCost(DEFAULT_PRICES['o4-mini'], { requests: 1, input_tokens: 10, cached_input_tokens: 11, output_tokens: 0 })).toThrow('cannot exceed');
    expect(() => apiCost(DEFAULT_PRICES['o4-mini'], { requests: 1, input_tokens: -1, cached_input_tokens: 0, output_tokens: 0 })).toThrow('input_tokens must be a finite number >= 0, got -1');
  });
});

describe('selfHostedCost', () => {
  // $2/GPU-hour, 1 GPU, 3.6M tokens in one hour: 1000 tokens/s.
  const run = { usd_per_gpu_hour: 2, gpus: 1, requests: 1000, total_tokens: 3_600_000, wall_seconds: 3600 };

  it('GPU $/hour x GPUs / measured throughput', () => {
    const c = selfHostedCost(run);
    expect(c.usd_per_hour).toBe(2);
    expect(c.tokens_per_second).toBe(1000);
    expect(c.tokens_per_request).toBe(3600);
    expect(c.usd_per_1m_tokens).toBeCloseTo(2 / 3.6, 10); // $2 buys 3.6M tokens
    expect(c.usd_per_request).toBeCloseTo(0.002, 12); // $2 per hour / 1000 requests per hour
  });

  it('counts every GPU of a replica', () => {
    expect(selfHostedCost({ ...run, gpus: 4 }).usd_per_1m_tokens).toBeCloseTo(8 / 3.6, 10);
  });

  it('has no per-token cost without tokens, and refuses a zero wall time', () => {
    expect(selfHostedCost({ ...run, total_tokens: 0, requests: 0 })).toMatchObject({ tokens_per_second: 0, usd_per_1m_tokens: null, usd_per_request: null, tokens_per_request: null });
    expect(() => selfHostedCost({ ...run, wall_seconds: 0 })).toThrow('wall_seconds must be > 0');
  });
});

describe('monthlyProjection', () => {
  it('defaults to 1M and 10M tokens a day', () => {
    expect(DEFAULT_DAILY_VOLUMES).toEqual([1_000_000, 10_000_000]);
  });

  it('API: volume x 30 days x $/1M tokens', () => {
    const p = monthlyProjection({ kind: 'api', usd_per_1m_tokens: 3.025 });
    expect(p.map((m) => m.usd_per_month)).toEqual([expect.closeTo(90.75, 9), expect.closeTo(907.5, 9)]);
    expect(p.map((m) => m.replicas)).toEqual([null, null]);
  });

  it('self-hosted: whole replicas running 24/7, at least one', () => {
    // 1000 tokens/s carries 86.4M tokens a day; a replica costs $2 x 720 h = $1440 a month.
    const p = monthlyProjection({ kind: 'self_hosted', usd_per_hour: 2, tokens_per_second: 1000 }, [0, 1e6, 86_400_000, 86_400_001, 200e6]);
    expect(p).toEqual([
      { tokens_per_day: 0, usd_per_month: 1440, replicas: 1 },
      { tokens_per_day: 1e6, usd_per_month: 1440, replicas: 1 },
      { tokens_per_day: 86_400_000, usd_per_month: 1440, replicas: 1 },
      { tokens_per_day: 86_400_001, usd_per_month: 2880, replicas: 2 },
      { tokens_per_day: 200e6, usd_per_month: 4320, replicas: 3 },
    ]);
  });

  it('is unknown without a measured throughput or price', () => {
    expect(monthlyProjection({ kind: 'self_hosted', usd_per_hour: 2, tokens_per_second: 0 }, [1e6])).toEqual([{ tokens_per_day: 1e6, usd_per_month: null, replicas: null }]);
    expect(monthlyProjection({ kind: 'api', usd_per_1m_tokens: null }, [1e6])).toEqual([{ tokens_per_day: 1e6, usd_per_month: null, replicas: null }]);
    expect(() => monthlyProjection({ kind: 'api', usd_per_1m_tokens: 1 }, [-1])).toThrow(RangeError);
  });
});

describe('breakEven', () => {
  const self = { usd_per_hour: 2, tokens_per_second: 1000 }; // $1440/month per replica, 86.4M tokens/day each

  it('by hand: an API at $1/1M tokens', () => {
    // API: V x 30 x $1e-6 = $1440 at V = 48M tokens/day, under one replica's 86.4M: break-even 48M.
    // Past 86.4M a second replica costs $2880, which the API only reaches at 96M; from 3 replicas on
    // (172.8M+, $4320 vs the API's >= $5184) self-hosting stays cheaper. So: never dearer from 96M.
    expect(breakEven(self, 1)).toEqual({ tokens_per_day: expect.closeTo(48e6, 3), self_hosted_cheaper_from_tokens_per_day: expect.closeTo(96e6, 3) });
  });

  it('agrees with the projections at every volume', () => {
    const { tokens_per_day: first, self_hosted_cheaper_from_tokens_per_day: from } = breakEven(self, 1);
    const volumes = Array.from({ length: 400 }, (_, i) => (i + 1) * 1e6);
    const own = monthlyProjection({ kind: 'self_hosted', ...self }, volumes);
    const api = monthlyProjection({ kind: 'api', usd_per_1m_tokens: 1 }, volumes);
    volumes.forEach((v, i) => {
      const selfCheaper = (own[i].usd_per_month as number) <= (api[i].usd_per_month as number) + 1e-9;
      // Within a token of a boundary the floating-point side is arbitrary; the volumes land on 48M and 96M.
      if (v < first! - 1) expect(selfCheaper).toBe(false);
      if (Math.abs(v - first!) < 1) expect(selfCheaper).toBe(true);
      if (v > from! - 1) expect(selfCheaper).toBe(true);
    });
    expect(volumes.some((v, i) => v > first! && v < from! && (own[i].usd_per_month as number) > (api[i].usd_per_month as number))).toBe(true);
  });

  it('when the API costs twice the self-hosted full-load price or more, the first crossing is final', () => {
    // $2/1M: 1440 / (30 x 2e-6) = 24M tokens/day.
    expect(breakEven(self, 2)).toEqual({ tokens_per_day: expect.closeTo(24e6, 3), self_hosted_cheaper_from_tokens_per_day: expect.closeTo(24e6, 3) });
  });

  it('never, when the API is cheaper than a fully loaded replica', () => {
    // A fully loaded replica costs 2 / 3.6 = $0.556 per 1M tokens.
    expect(breakEven(self, 0.5)).toEqual({ tokens_per_day: null, self_hosted_cheaper_from_tokens_per_day: null });
    expect(breakEven(self, 0)).toEqual({ tokens_per_day: null, self_hosted_cheaper_from_tokens_per_day: null });
    expect(breakEven({ usd_per_hour: 2, tokens_per_second: 0 }, 1)).toEqual({ tokens_per_day: null, self_hosted_cheaper_from_tokens_per_day: null });
  });

  it('a tie only at full load when the prices per token are equal', () => {
    // $3.6/hour at 1000 tokens/s is exactly $1 per 1M tokens.
    expect(breakEven({ usd_per_hour: 3.6, tokens_per_second: 1000 }, 1)).toEqual({ tokens_per_day: expect.closeTo(86.4e6, 3), self_hosted_cheaper_from_tokens_per_day: null });
  });
});

describe('sameWorkUsdPer1m', () => {
  it("prices the API's requests in the self-hosted target's tokens", () => {
    // $0.003 per request; the self-hosted model spends 1500 tokens on the same request: $2 per 1M of its tokens.
    expect(sameWorkUsdPer1m(0.003, 1500)).toBeCloseTo(2, 12);
    expect(() => sameWorkUsdPer1m(0.003, 0)).toThrow(RangeError);
  });
});
