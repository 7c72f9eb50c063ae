import { Injectable, OnModuleInit } from '@nestjs/common';
import { Config } from '../config/config';
import { GatewaySeries, Outcome } from '../metrics/gateway-series';
import { Metrics } from '../metrics/metrics';
import { AdapterStats } from '../serving/adapter-stats';
import { parseServedName } from '../serving/served-name';
import { UsageMeter } from '../usage/usage-meter';
import { InferenceObserver, InferenceRecord } from './gateway-hooks';
import { GatewayHandler } from './gateway.handler';

/** Bounded metric labels from what was served (a deployed name), never from the name the client sent. */
function labelsOf(rec: InferenceRecord): { pool: string; adapter: string; version: string } {
  if (rec.kind === 'provider') return { pool: 'provider', adapter: 'provider', version: rec.served ?? 'none' };
  if (!rec.served || !rec.poolName) return { pool: 'none', adapter: 'none', version: 'none' };
  const v = parseServedName(rec.served);
  return v ? { pool: rec.poolName, adapter: v.adapter, version: `v${v.version}` } : { pool: rec.poolName, adapter: 'base', version: rec.served };
}

function outcomeOf(rec: InferenceRecord): Outcome {
  if (rec.errorKind === null && rec.status < 400) return 'ok';
  if (rec.errorKind === 'rate_limit_exceeded') return 'rate_limited';
  if (rec.errorKind === 'client_abort') return 'client_abort';
  if (rec.errorKind === 'no_replica' || rec.errorKind?.startsWith('upstream_') || rec.status >= 500) return 'upstream_error';
  return 'client_error';
}

/** The upstream failure kinds, a fixed set: connect, timeout, http_4xx, http_5xx, bad_response, no_replica. */
function upstreamKind(rec: InferenceRecord): string | null {
  if (rec.errorKind === 'no_replica') return 'no_replica';
  if (rec.errorKind === 'upstream_status') return rec.status >= 500 ? 'http_5xx' : 'http_4xx';
  if (rec.errorKind === 'upstream_connect' || rec.errorKind === 'upstream_timeout') return rec.errorKind.slice('upstream_'.length);
  if (rec.errorKind?.startsWith('upstream_')) return 'bad_response';
  return null;
}

/**
 * What the gateway knows once a request ends, into the three places that keep it, all in memory on this path:
 * usage (per project, key, model name, resolved version; flushed to Postgres), Prometheus series, and the
 * per-adapter figures (flushed to Redis).
 */
/** What a served name means for the metrics and the per-adapter figures, worked out once per name. */
interface ServedEntry {
  series: GatewaySeries;
  version: { adapter: string; version: number } | null;
}

@Injectable()
export class OperationsObserver extends InferenceObserver implements OnModuleInit {
  /** pool name (or a marker for provider / nothing served) -> served name -> entry. Bounded like the routes. */
  private readonly served = new Map<string, Map<string, ServedEntry>>();

  constructor(
    private readonly handler: GatewayHandler,
    private readonly usage: UsageMeter,
    private readonly metrics: Metrics,
    private readonly stats: AdapterStats,
    private readonly config: Config,
  ) {
    super();
  }

  onModuleInit() {
    if (this.config.env.GATEWAY_RECORD_USAGE) this.handler.observe(this);
  }

  onRequestEnd(rec: InferenceRecord): void {
    const outcome = outcomeOf(rec);
    const inputTokens = rec.usage?.prompt_tokens ?? 0;
    const outputTokens = rec.usage?.completion_tokens ?? 0;
    // Unauthenticated or unparseable requests belong to nobody's usage.
    if (rec.projectId && rec.keyId && rec.model) {
      this.usage.record({ projectId: rec.projectId, apiKeyId: rec.keyId, model: rec.model, resolved: rec.served ?? '-', inputTokens, outputTokens, latencyMs: rec.latencyMs, error: outcome !== 'ok' });
    }
    const entry = this.entryOf(rec);
    entry.series.request(rec.arm ?? 'none', outcome);
    const kind = upstreamKind(rec);
    if (kind) this.metrics.upstreamErrors.inc({ pool: entry.series.labels.pool, kind });
    if (outcome === 'ok') {
      entry.series.latency(rec.latencyMs / 1000, rec.ttftMs === null ? null : rec.ttftMs / 1000);
      entry.series.tokens(inputTokens, outputTokens);
    }
    if (entry.version && rec.poolId && rec.replicaName) {
      this.stats.record({ poolId: rec.poolId, adapter: entry.version.adapter, version: entry.version.version, replica: rec.replicaName, latencyMs: rec.latencyMs, ttftMs: rec.ttftMs, error: outcome !== 'ok' });
    }
  }

  private entryOf(rec: InferenceRecord): ServedEntry {
    const provider = rec.kind === 'provider';
    const pool = provider ? '\u0000provider' : rec.served && rec.poolName ? rec.poolName : '\u0000none';
    const name = rec.served ?? '';
    let byName = this.served.get(pool);
    if (!byName) this.served.set(pool, (byName = new Map()));
    let entry = byName.get(name);
    if (!entry) {
      const l = labelsOf(rec);
      entry = { series: this.metrics.gatewaySeries(l.pool, l.adapter, l.version), version: rec.served ? parseServedName(rec.served) : null };
      byName.set(name, entry);
    }
    return entry;
  }
}
