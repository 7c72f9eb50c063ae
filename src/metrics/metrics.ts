import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { GatewaySeries } from './gateway-series';
import { SeriesHistogram } from './series-histogram';

/**
 * The process's Prometheus registry (its own, not prom-client's global one: tests start several apps in one process)
 * and the gateway's series. Labels are bounded on purpose: pool, adapter and version come from the routing table
 * (what operators deployed), never from request text; no per-key, per-user or per-request label.
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();
  /** pool, adapter, version (joined) -> its series; bounded like the labels themselves. */
  private readonly series = new Map<string, GatewaySeries>();
  private readonly drainSeries = () => {
    for (const s of this.series.values()) s.drain();
  };

  /** `arm`: none (no canary), stable or canary. `outcome`: ok, client_error, upstream_error, rate_limited. */
  readonly gatewayRequests = new Counter({
    name: 'loraplane_gateway_requests_total',
    help: 'Requests the gateway answered, by pool, adapter, version, canary arm and outcome',
    labelNames: ['pool', 'adapter', 'version', 'arm', 'outcome'] as const,
    registers: [this.registry],
    collect: this.drainSeries,
  });

  /** Observed into per-series slots (SeriesHistogram: prom-client's labelled observe is too dear per request). */
  readonly gatewayLatency = new SeriesHistogram({
    name: 'loraplane_gateway_request_duration_seconds',
    help: 'Time from the request to the last byte of the answer',
    labelNames: ['pool', 'adapter', 'version'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly gatewayTtft = new SeriesHistogram({
    name: 'loraplane_gateway_time_to_first_token_seconds',
    help: 'Time from the request to the first streamed token (streaming requests)',
    labelNames: ['pool', 'adapter', 'version'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly gatewayTokens = new Counter({
    name: 'loraplane_gateway_tokens_total',
    help: 'Tokens through the gateway (from the upstream usage blocks), by direction: input or output',
    labelNames: ['pool', 'adapter', 'version', 'direction'] as const,
    registers: [this.registry],
    collect: this.drainSeries,
  });

  /** `kind`: connect, reset, timeout, http_4xx, http_5xx, bad_response, no_replica. */
  readonly upstreamErrors = new Counter({
    name: 'loraplane_gateway_upstream_errors_total',
    help: 'Failed calls to a vLLM replica or provider, by pool and kind',
    labelNames: ['pool', 'kind'] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'loraplane_gateway_rate_limited_total',
    help: 'Requests refused with 429 by a per-key or per-project limit',
    registers: [this.registry],
  });

  readonly usageFlushes = new Counter({
    name: 'loraplane_usage_flushes_total',
    help: 'Usage flushes to Postgres, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'loraplane_' });
  }

  /** The gateway's request series of one (pool, adapter, version): look it up once, then count into it. */
  gatewaySeries(pool: string, adapter: string, version: string): GatewaySeries {
    const id = `${pool}\u0000${adapter}\u0000${version}`;
    let s = this.series.get(id);
    if (!s) this.series.set(id, (s = new GatewaySeries({ pool, adapter, version }, this)));
    return s;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
