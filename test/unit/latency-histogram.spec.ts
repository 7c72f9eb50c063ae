import { bucketOf, percentile, valueOf } from '../../src/serving/latency-histogram';

describe('log-scale latency histogram', () => {
  it('reads percentiles back within 5 % of the exact nearest-rank value', () => {
    const values = Array.from({ length: 2000 }, (_, i) => 2 + ((i * 7919) % 2000) * 1.37); // 2 ms .. ~2.7 s, shuffled
    const counts = new Map<number, number>();
    for (const v of values) counts.set(bucketOf(v), (counts.get(bucketOf(v)) ?? 0) + 1);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [50, 95, 99]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1];
      expect(Math.abs(percentile(counts, p)! - exact) / exact).toBeLessThan(0.05);
    }
  });

  it('keeps sub-millisecond and huge values in the end buckets, and says nothing about an empty one', () => {
    expect(bucketOf(0.2)).toBe(0);
    expect(valueOf(0)).toBe(1);
    expect(bucketOf(1e12)).toBe(149);
    expect(percentile(new Map(), 50)).toBeNull();
  });
});
