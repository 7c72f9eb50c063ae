import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { Metrics } from '../../src/metrics/metrics';
import { SeriesHistogram } from '../../src/metrics/series-histogram';

const NAME = 'loraplane_gateway_request_duration_seconds';
const HELP = 'Time from the request to the last byte of the answer';
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
type Key = 'pool' | 'adapter' | 'version';
type Labels = Record<Key, string>;

const a: Labels = { pool: 'p1', adapter: 'tickets', version: 'v2' };
const b: Labels = { pool: 'p1', adapter: 'base', version: 'Qwen/Qwen2.5-0.5B' };
const c: Labels = { pool: 'odd "pool"\\', adapter: 'x\ny', version: 'v1' };

/** prom-client's own Histogram in one registry, ours in another, both fed the same observations. */
function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: NAME, help: HELP, labelNames: ['pool', 'adapter', 'version'] as const, buckets: BUCKETS, registers: [theirs] });
  const histogram = new SeriesHistogram({ name: NAME, help: HELP, labelNames: ['pool', 'adapter', 'version'] as const, buckets: BUCKETS, registers: [ours] });
  const observe = (labels: Labels, value: number) => {
    reference.observe(labels, value);
    histogram.slot(labels).observe(value);
  };
  return { theirs, ours, histogram, observe };
}

async function expectSame(theirs: Registry, ours: Registry) {
  const text = await ours.metrics();
  expect(text).toBe(await theirs.metrics());
  const json = await ours.getMetricsAsJSON();
  expect(json).toStrictEqual(await theirs.getMetricsAsJSON());
  expect(JSON.stringify(json)).toBe(JSON.stringify(await theirs.getMetricsAsJSON()));
  return text;
}

/** Every bound exactly, just either side of it, below the first, above the last, zero, negative, fractions that round. */
const VALUES = [0, -1, 0.001, ...BUCKETS, ...BUCKETS.map((x) => x * (1 + 1e-12)), ...BUCKETS.map((x) => x * (1 - 1e-12)), 61, 1e9, 0.1 + 0.2, 0.3, 1 / 3, 7.25];

describe('SeriesHistogram', () => {
  it("renders exactly what prom-client's Histogram renders for the same observations", async () => {
    const { theirs, ours, observe } = pair();
    expect(await ours.metrics()).toBe(await theirs.metrics()); // nothing observed: help and type only
    // b first: series appear in the order of their first observation.
    VALUES.forEach((v, i) => observe(i % 3 === 0 ? b : i % 3 === 1 ? a : c, v));
    for (let i = 0; i < 500; i++) observe(a, ((i * 7919) % 1000) / 13.7);
    const text = await expectSame(theirs, ours);
    expect(text).toContain(`${NAME}_bucket{le="0.005",pool="p1",adapter="tickets",version="v2"} `);
    expect(text).toContain(`${NAME}_bucket{le="+Inf",pool="p1",adapter="base",version="Qwen/Qwen2.5-0.5B"} `);
    expect(text).toContain(`${NAME}_count{pool="p1",adapter="tickets",version="v2"} `);
  });

  it('shares one series between equal label sets, and shows none for a slot never observed', async () => {
    const { theirs, ours, histogram, observe } = pair();
    histogram.slot({ pool: 'idle', adapter: 'idle', version: 'idle' });
    observe(a, 0.2);
    histogram.slot({ version: 'v2', adapter: 'tickets', pool: 'p1' }).observe(0.4);
    (theirs.getSingleMetric(NAME) as Histogram).observe({ version: 'v2', adapter: 'tickets', pool: 'p1' }, 0.4);
    const text = await expectSame(theirs, ours);
    expect(text).not.toContain('idle');
    expect(text).toContain(`${NAME}_count{pool="p1",adapter="tickets",version="v2"} 2`);
  });

  it('forgets every series on a registry reset, and counts afresh into the same slots after it', async () => {
    const { theirs, ours, observe } = pair();
    observe(a, 0.3);
    observe(b, 3);
    theirs.resetMetrics();
    ours.resetMetrics();
    await expectSame(theirs, ours);
    observe(b, 0.05);
    observe(a, 100);
    observe(b, 0.01);
    const text = await expectSame(theirs, ours);
    expect(text).toContain(`${NAME}_count{pool="p1",adapter="base",version="Qwen/Qwen2.5-0.5B"} 2`);
    expect(text.indexOf('adapter="base"')).toBeLessThan(text.indexOf('adapter="tickets"'));
  });

  it("aggregates across cluster workers as prom-client's Histogram does", async () => {
    const workers = [pair(), pair()];
    workers[0].observe(a, 0.07);
    workers[0].observe(b, 12);
    workers[1].observe(a, 0.5);
    workers[1].observe(a, 0.005);
    const theirs = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.theirs.getMetricsAsJSON())));
    const ours = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.ours.getMetricsAsJSON())));
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain(`${NAME}_count{pool="p1",adapter="tickets",version="v2"} 3`);
  });

  it('keeps default labels, and refuses what prom-client refuses', async () => {
    const { theirs, ours, histogram, observe } = pair();
    theirs.setDefaultLabels({ instance: 'gw-1' });
    ours.setDefaultLabels({ instance: 'gw-1' });
    observe(a, 0.2);
    await expectSame(theirs, ours);
    expect(() => histogram.slot(a).observe(Number.NaN)).toThrow(TypeError);
    expect(() => histogram.slot(a).observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(() => histogram.slot({ pool: 'p' } as Labels)).toThrow(/exactly pool, adapter, version/);
    expect(() => new SeriesHistogram({ name: NAME, help: HELP, labelNames: ['pool'], buckets: BUCKETS, registers: [ours] })).toThrow(/already been registered/);
    expect(() => new SeriesHistogram({ name: 'x', help: HELP, labelNames: ['le'], buckets: BUCKETS, registers: [] })).toThrow(/label name/);
    expect(() => new SeriesHistogram({ name: 'x', help: HELP, labelNames: [], buckets: [1, 0.5], registers: [] })).toThrow(/increasing/);
  });

  it("is what the gateway's series observe into, rendered in the app's registry", async () => {
    const metrics = new Metrics();
    const series = metrics.gatewaySeries('p1', 'tickets', 'v2');
    series.latency(0.25, null);
    series.latency(1.5, 0.004);
    expect(metrics.gatewaySeries('p1', 'tickets', 'v2')).toBe(series);
    const text = await metrics.text();
    expect(text).toContain('# TYPE loraplane_gateway_request_duration_seconds histogram');
    expect(text).toContain('loraplane_gateway_request_duration_seconds_bucket{le="0.25",pool="p1",adapter="tickets",version="v2"} 1');
    expect(text).toContain('loraplane_gateway_request_duration_seconds_sum{pool="p1",adapter="tickets",version="v2"} 1.75');
    expect(text).toContain('loraplane_gateway_time_to_first_token_seconds_bucket{le="0.005",pool="p1",adapter="tickets",version="v2"} 1');
    expect(text).toContain('loraplane_gateway_time_to_first_token_seconds_count{pool="p1",adapter="tickets",version="v2"} 1');
  });
});
