import { Injectable, OnModuleInit } from '@nestjs/common';
import { Config } from '../config/config';
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

function outcomeOf(rec: InferenceRecord): string {
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
@Injectable()
export class OperationsObserver extends InferenceObserver implements OnModuleInit {
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
    const labels = labelsOf(rec);
    this.metrics.gatewayRequests.inc({ ...labels, arm: rec.arm ?? 'none', outcome });
    const kind = upstreamKind(rec);
    if (kind) this.metrics.upstreamErrors.inc({ pool: labels.pool, kind });
    if (outcome === 'ok') {
      this.metrics.gatewayLatency.observe(labels, rec.latencyMs / 1000);
      if (rec.ttftMs !== null) this.metrics.gatewayTtft.observe(labels, rec.ttftMs / 1000);
      if (inputTokens) this.metrics.gatewayTokens.inc({ ...labels, direction: 'input' }, inputTokens);
      if (outputTokens) this.metrics.gatewayTokens.inc({ ...labels, direction: 'output' }, outputTokens);
    }
    const served = rec.served ? parseServedName(rec.served) : null;
    if (served && rec.poolId && rec.replicaName) {
      this.stats.record({ poolId: rec.poolId, adapter: served.adapter, version: served.version, replica: rec.replicaName, latencyMs: rec.latencyMs, ttftMs: rec.ttftMs, error: outcome !== 'ok' });
    }
  }
}
