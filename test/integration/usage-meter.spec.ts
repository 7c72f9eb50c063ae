import { randomBytes } from 'node:crypto';
import { Config } from '../../src/config/config';
import { PrismaService } from '../../src/db/prisma.service';
import { Metrics } from '../../src/metrics/metrics';
import { UsageEvent, UsageMeter } from '../../src/usage/usage-meter';
import { UsageService } from '../../src/usage/usage.service';
import { testEnv } from '../support/app';

/**
 * The usage meter against the real Postgres: in-memory aggregation, increments from several replicas into the same
 * minute rows, a failed flush that keeps its counts, and the grouped sums of GET /v1/usage.
 */
describe('UsageMeter and UsageService (Postgres)', () => {
  const config = Config.fromEnv(testEnv({ USAGE_FLUSH_INTERVAL_MS: '5000' }));
  const prisma = new PrismaService(config);
  const service = new UsageService(prisma);
  const metrics = new Metrics();
  const projectId = `proj_${randomBytes(6).toString('hex')}`;
  const t0 = Date.UTC(2026, 10, 30, 23, 58, 30); // two minutes before a day boundary
  const ev = (over: Partial<UsageEvent>): UsageEvent => ({
    projectId, apiKeyId: 'key_a', model: 'support', resolved: 'support@v1', inputTokens: 10, outputTokens: 2, latencyMs: 100, error: false, at: t0, ...over,
  });
  const window = { start: new Date(t0 - 3_600_000), end: new Date(t0 + 3_600_000) };
  afterAll(() => prisma.$disconnect());

  it('adds what two replicas counted into the same rows and sums them per group', async () => {
    const a = new UsageMeter(prisma, config, metrics);
    const b = new UsageMeter(prisma, config, metrics);
    a.record(ev({}));
    a.record(ev({ inputTokens: 5, outputTokens: 5, latencyMs: 300 }));
    b.record(ev({ apiKeyId: 'key_b' }));
    b.record(ev({ resolved: 'support@v2', error: true, inputTokens: 0, outputTokens: 0 }));
    b.record(ev({ model: 'tiny-lora', resolved: 'tiny-lora', at: t0 + 120_000 })); // the next day (UTC)
    a.record(ev({})); // same row as the first, from a: 3 rows of key_a/support@v1 in all
    await Promise.all([a.flush(), b.flush()]);

    const totals = await service.usage(projectId, { ...window, groupBy: [] });
    expect(totals).toEqual([{ requests: 6, errors: 1, inputTokens: 45, outputTokens: 13, latencyMsSum: 800 }]);
    const byVersion = await service.usage(projectId, { ...window, groupBy: ['version'] });
    expect(byVersion.map((r) => [r.version, r.requests, r.errors])).toEqual([['support@v1', 4, 0], ['support@v2', 1, 1], ['tiny-lora', 1, 0]]);
    const byKeyModel = await service.usage(projectId, { ...window, groupBy: ['key', 'model'] });
    expect(byKeyModel.map((r) => [r.apiKeyId, r.model, r.requests, r.inputTokens])).toEqual([
      ['key_a', 'support', 4, 25],
      ['key_a', 'tiny-lora', 1, 10],
      ['key_b', 'support', 1, 10],
    ]);
    const byDay = await service.usage(projectId, { ...window, groupBy: ['day'] });
    expect(byDay.map((r) => [r.day, r.requests])).toEqual([['2026-11-30', 5], ['2026-12-01', 1]]);
    // Another project sees none of it.
    expect(await service.usage('proj_other', { ...window, groupBy: [] })).toEqual([{ requests: 0, errors: 0, inputTokens: 0, outputTokens: 0, latencyMsSum: 0 }]);
    // Minute resolution: a window ending before the last minute leaves it out.
    expect((await service.usage(projectId, { start: window.start, end: new Date(t0 + 60_000), groupBy: [] }))[0].requests).toBe(5);
  });

  it('keeps the counts of a failed flush and writes them with the next one', async () => {
    let failures = 1;
    const flaky = new Proxy(prisma, {
      get(target, prop, receiver) {
        if (prop === '$executeRaw' && failures > 0) {
          failures--;
          return () => Promise.reject(new Error('connection lost'));
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const meter = new UsageMeter(flaky, config, metrics);
    const other = `${projectId}_flaky`;
    meter.record(ev({ projectId: other }));
    await meter.flush(); // fails: nothing written, nothing lost
    expect(await metrics.registry.getSingleMetricAsString('loraplane_usage_flushes_total')).toMatch(/result="failed"\} 1$/m);
    expect((await service.usage(other, { ...window, groupBy: [] }))[0].requests).toBe(0);
    meter.record(ev({ projectId: other, outputTokens: 8 }));
    await meter.flush();
    expect(await service.usage(other, { ...window, groupBy: [] })).toEqual([{ requests: 2, errors: 0, inputTokens: 20, outputTokens: 10, latencyMsSum: 200 }]);
  });

  it('counts what comes while a flush is out into the next one, for the same row', async () => {
    let writing!: () => void;
    const started = new Promise<void>((resolve) => (writing = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const slow = new Proxy(prisma, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== '$executeRaw' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return (...args: unknown[]) => {
          writing();
          return gate.then(() => (value as (...a: unknown[]) => Promise<number>).apply(target, args));
        };
      },
    });
    const meter = new UsageMeter(slow, config, metrics);
    const busy = `${projectId}_busy`;
    meter.record(ev({ projectId: busy }));
    const first = meter.flush();
    await started; // the flush has taken the counts so far: what comes now must not go into its batch
    meter.record(ev({ projectId: busy, inputTokens: 1 }));
    meter.record(ev({ projectId: busy, inputTokens: 1, at: t0 + 60_000 }));
    open();
    await first;
    expect((await service.usage(busy, { ...window, groupBy: [] }))[0].requests).toBe(1);
    await meter.flush();
    expect(await service.usage(busy, { ...window, groupBy: [] })).toEqual([{ requests: 3, errors: 0, inputTokens: 12, outputTokens: 6, latencyMsSum: 300 }]);
  });

  it('flushes on a graceful stop', async () => {
    const meter = new UsageMeter(prisma, config, metrics);
    meter.onModuleInit();
    const other = `${projectId}_stop`;
    meter.record(ev({ projectId: other }));
    await meter.onModuleDestroy();
    expect((await service.usage(other, { ...window, groupBy: [] }))[0].requests).toBe(1);
  });
});
