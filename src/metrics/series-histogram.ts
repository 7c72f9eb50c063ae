import type { Aggregator, Metric, Registry } from 'prom-client';

/** A sample as prom-client's registry renders it: `labels` are the sample's own (`le`), `sharedLabels` the series'. */
interface PromValue {
  labels: { le?: number | string };
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/** A sample as `registry.getMetricsAsJSON()` (and cluster aggregation) reads it: the two label sets in one. */
interface JsonValue {
  value: number;
  metricName: string;
  exemplar: null | undefined;
  labels: Record<string, string | number>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * One label set's counts, held by whoever observes into it (a GatewaySeries), so an observation finds nothing by
 * label: a bucket found by a short loop, three additions. Read and reset only through its SeriesHistogram.
 */
export class HistogramSlot<K extends string> {
  /** Observations per bucket, not cumulative; the last one counts those above every bound (seen only in +Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly owner: SeriesHistogram<K>,
    private readonly bounds: Float64Array,
    readonly labels: Readonly<Record<K, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i] += 1;
    this.sum += value;
    if (this.count++ === 0) this.owner.activated(this);
  }

  /** @internal */
  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A Prometheus histogram whose label sets are slots held by their observers. prom-client's labelled `observe`
 * checks and hashes the label object and searches the buckets on every call, ~5 us a request in a profile of the
 * gateway, a large share of what metering adds to it; observing into a held slot costs next to nothing. Registered in
 * a prom-client Registry as a custom metric (the registry only calls `get`/`getForPromString` and `reset`, and
 * registers plain objects itself when it aggregates cluster workers), it renders exactly what prom-client's
 * Histogram renders for the same observations: the same samples, labels, values and order, series appearing at their
 * first observation and dropped by a reset.
 */
export class SeriesHistogram<K extends string> {
  readonly type = 'histogram' as const;
  readonly aggregator: Aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly K[];
  private readonly upperBounds: readonly number[];
  private readonly bounds: Float64Array;
  private readonly names: { bucket: string; sum: string; count: string };
  /** Label values (joined) -> its slot, so equal label sets share one series. */
  private readonly slots = new Map<string, HistogramSlot<K>>();
  /** Slots observed since the last reset, in the order of their first observation (prom-client's order). */
  private active: HistogramSlot<K>[] = [];

  constructor(config: { name: string; help: string; labelNames: readonly K[]; buckets: readonly number[]; registers: Registry[] }) {
    const { name, help, labelNames, buckets } = config;
    if (!METRIC_NAME.test(name)) throw new Error(`Invalid metric name: ${name}`);
    if (!help) throw new Error('Missing mandatory help parameter');
    for (const l of labelNames) if (!LABEL_NAME.test(l) || l.startsWith('__') || l === 'le') throw new Error(`Invalid label name: ${l}`);
    if (!buckets.every((b, i) => Number.isFinite(b) && (i === 0 || b > buckets[i - 1]))) throw new Error('Bucket bounds must be finite and increasing');
    this.name = name;
    this.help = help;
    this.labelNames = [...labelNames];
    this.upperBounds = Object.freeze([...buckets]);
    this.bounds = Float64Array.from(buckets);
    this.names = { bucket: `${name}_bucket`, sum: `${name}_sum`, count: `${name}_count` };
    // The registry's parameter type lists prom-client's own classes; it reads only what this class has.
    for (const r of config.registers) r.registerMetric(this as unknown as Metric);
  }

  /** The slot of one label set (every label name, nothing else): look it up once, then observe into it. */
  slot(labels: Readonly<Record<K, string>>): HistogramSlot<K> {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((n) => typeof labels[n] === 'string')) {
      throw new Error(`Labels of ${this.name} must be exactly ${this.labelNames.join(', ')}; got ${keys.join(', ')}`);
    }
    const id = this.labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.slots.get(id);
    if (!s) this.slots.set(id, (s = new HistogramSlot(this, this.bounds, labels)));
    return s;
  }

  /** @internal A slot's first observation since the last reset. */
  activated(slot: HistogramSlot<K>): void {
    this.active.push(slot);
  }

  /** What the registry renders as text (prom-client's Histogram#getForPromString, value for value). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: PromValue[]; aggregator: Aggregator }> {
    const values: PromValue[] = [];
    const { bucket, sum, count } = this.names;
    for (const s of this.active) {
      let acc = 0;
      for (let i = 0; i < this.upperBounds.length; i++) {
        acc += s.counts[i];
        values.push({ labels: { le: this.upperBounds[i] }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: sum, exemplar: undefined },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: count, exemplar: undefined },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same as JSON (`getMetricsAsJSON`, cluster aggregation): each sample's labels in one object, `le` first. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: JsonValue[]; aggregator: Aggregator }> {
    const data = await this.getForPromString();
    const values = data.values.map(({ labels, sharedLabels, value, metricName, exemplar }): JsonValue => ({ value, metricName, exemplar, labels: { ...labels, ...sharedLabels } }));
    return { ...data, values };
  }

  /** Forgets every series (`registry.resetMetrics()`); the slots stay valid and reappear at their next observation. */
  reset(): void {
    for (const s of this.active) s.clear();
    this.active = [];
  }
}
