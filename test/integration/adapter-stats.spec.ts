import { randomBytes } from 'node:crypto';
import { Config } from '../../src/config/config';
import { AdapterSample, AdapterStats } from '../../src/serving/adapter-stats';
import { testEnv } from '../support/app';

/** Per-adapter figures in Redis: two gateways' counts add up per version and replica, over a window of minutes. */
describe('AdapterStats (Redis)', () => {
  const config = Config.fromEnv(testEnv({ QUEUE_PREFIX: `as${randomBytes(4).toString('hex')}` }));
  const a = new AdapterStats(config);
  const b = new AdapterStats(config);
  afterAll(() => Promise.all([a.onModuleDestroy(), b.onModuleDestroy()]));
  const now = Date.now();
  const s = (over: Partial<AdapterSample>): AdapterSample => ({ poolId: 'pool-1', adapter: 'support', version: 1, replica: 'r0', latencyMs: 100, ttftMs: null, error: false, ...over });

  it('adds both gateways per version and replica, with percentiles, errors and TTFT', async () => {
    for (let i = 1; i <= 100; i++) a.record(s({ latencyMs: i * 10, ttftMs: i }), now);
    for (let i = 1; i <= 50; i++) b.record(s({ replica: 'r1', latencyMs: 20 }), now);
    b.record(s({ replica: 'r1', error: true }), now);
    for (let i = 0; i < 10; i++) b.record(s({ version: 2, latencyMs: 500 }), now - 60_000); // the minute before
    a.record(s({ version: 2, latencyMs: 500 }), now - 20 * 60_000); // outside any window
    await Promise.all([a.flush(), b.flush()]);
    const figures = await a.window('pool-1', 'support', 5, now);
    expect(figures.map((f) => [f.version, f.requests, f.errors])).toEqual([[1, 151, 1], [2, 10, 0]]);
    const v1 = figures[0];
    expect(v1.replicas.map((r) => [r.replica, r.requests, r.errors])).toEqual([['r0', 100, 0], ['r1', 51, 1]]);
    const r0 = v1.replicas[0];
    expect(r0.latency_p50_ms).toBeGreaterThan(500 * 0.95);
    expect(r0.latency_p50_ms).toBeLessThan(500 * 1.05);
    expect(r0.latency_p95_ms).toBeGreaterThan(950 * 0.95);
    expect(r0.ttft_p95_ms).toBeGreaterThan(95 * 0.95);
    expect(v1.replicas[1].ttft_p50_ms).toBeNull();
    expect(figures[1].latency_p50_ms).toBeGreaterThan(475);
    // A one-minute window holds only the current minute.
    expect((await b.window('pool-1', 'support', 1, now)).map((f) => f.version)).toEqual([1]);
    expect(await b.window('pool-1', 'other', 5, now)).toEqual([]);
  });
});
