import { latencySummary, percentile, tokenTotals, wilsonInterval, Z_95 } from '../../src/evals/stats';

describe('wilsonInterval', () => {
  it('81 of 100: [0.7222, 0.8749]', () => {
    const w = wilsonInterval(81, 100);
    expect(w.rate).toBe(0.81);
    expect(w.low).toBeCloseTo(0.7222, 4);
    expect(w.high).toBeCloseTo(0.8749, 4);
  });

  it.each([
    // Hand-computed from the formula with z = 1.959963984540054.
    [0, 10, 0, 0.27753],
    [10, 10, 0.72247, 1],
    [5, 10, 0.23659, 0.76341],
    [1, 1, 0.20655, 1],
  ])('%i of %i: [%f, %f]', (k, n, low, high) => {
    const w = wilsonInterval(k, n);
    expect(w.low).toBeCloseTo(low, 5);
    expect(w.high).toBeCloseTo(high, 5);
    expect(w.low).toBeGreaterThanOrEqual(0);
    expect(w.high).toBeLessThanOrEqual(1);
  });

  it('is symmetric: k of n mirrors n - k of n', () => {
    const a = wilsonInterval(3, 17);
    const b = wilsonInterval(14, 17);
    expect(a.low).toBeCloseTo(1 - b.high, 12);
    expect(a.high).toBeCloseTo(1 - b.low, 12);
  });

  it('says nothing for n = 0', () => {
    expect(wilsonInterval(0, 0)).toEqual({ k: 0, n: 0, rate: null, low: 0, high: 1 });
  });

  it('uses the 95% quantile and refuses impossible counts', () => {
    expect(Z_95).toBe(1.959963984540054);
    expect(() => wilsonInterval(11, 10)).toThrow('k must be an integer in 0..10, got 11');
    expect(() => wilsonInterval(-1, 10)).toThrow(RangeError);
    expect(() => wilsonInterval(1.5, 10)).toThrow(RangeError);
    expect(() => wilsonInterval(0, -1)).toThrow('n must be a non-negative integer, got -1');
  });
});

describe('percentile (nearest rank)', () => {
  const oneToHundred = Array.from({ length: 100 }, (_, i) => 100 - i); // unsorted on purpose

  it.each([
    [50, 50],
    [95, 95],
    [99, 99],
    [100, 100],
    [0.5, 1],
  ])('p%f of 1..100 = %i', (q, expected) => {
    expect(percentile(oneToHundred, q)).toBe(expected);
  });

  it('always returns a measured value: no interpolation', () => {
    const v = [10, 20, 30, 40];
    expect(percentile(v, 50)).toBe(20); // rank ceil(2) = 2, not 25
    expect(percentile(v, 51)).toBe(30); // rank ceil(2.04) = 3
    expect(percentile(v, 95)).toBe(40);
    expect(percentile([7], 99)).toBe(7);
  });

  it('is null for no values and refuses q outside (0, 100]', () => {
    expect(percentile([], 50)).toBeNull();
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('latencySummary', () => {
  it('p50/p95/p99 and the mean', () => {
    const values = Array.from({ length: 200 }, (_, i) => i + 1); // 1..200
    expect(latencySummary(values)).toEqual({ count: 200, mean: 100.5, p50: 100, p95: 190, p99: 198 });
  });

  it('is all null when no request got an answer', () => {
    expect(latencySummary([])).toEqual({ count: 0, mean: null, p50: null, p95: null, p99: null });
  });

  it('refuses a negative or non-finite latency', () => {
    expect(() => latencySummary([1, -2])).toThrow('a latency must be a finite number >= 0, got -2');
    expect(() => latencySummary([NaN])).toThrow(RangeError);
  });
});

describe('tokenTotals', () => {
  it('sums usage and counts requests without any', () => {
    expect(
      tokenTotals([
        { input_tokens: 100, cached_input_tokens: 40, output_tokens: 20 },
        { input_tokens: 50, output_tokens: 5 },
        null,
        undefined,
      ]),
    ).toEqual({ requests: 4, without_usage: 2, input_tokens: 150, cached_input_tokens: 40, output_tokens: 25, total_tokens: 175 });
    expect(tokenTotals([])).toEqual({ requests: 0, without_usage: 0, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0, total_tokens: 0 });
  });
});
