import type { Counter } from 'prom-client';
import type { HistogramSlot, SeriesHistogram } from './series-histogram';

export type Arm = 'none' | 'stable' | 'canary';
/** ok, client_error, upstream_error, rate_limited, client_abort. */
export type Outcome = 'ok' | 'client_error' | 'upstream_error' | 'rate_limited' | 'client_abort';
export type SeriesLabels = { pool: string; adapter: string; version: string };

type Key = 'pool' | 'adapter' | 'version';

const ARM_INDEX: Record<Arm, number> = { none: 0, stable: 1, canary: 2 };
const OUTCOME_INDEX: Record<Outcome, number> = { ok: 0, client_error: 1, upstream_error: 2, rate_limited: 3, client_abort: 4 };
const OUTCOMES = 5;

/**
 * The gateway's request series of one (pool, adapter, version), found once and kept. Requests and tokens are
 * counted in plain numbers here and handed to prom-client when it is scraped (`drain`): a labelled `inc` hashes and
 * checks its label object on every call, which costs more than the rest of the metering. Latencies go at once into
 * this series' own slots of the two histograms (SeriesHistogram), found once here, so nothing is looked up per request.
 */
export class GatewaySeries {
  /** Indexed by arm and outcome (two small fixed sets), so counting builds no key. */
  private readonly requests: ({ labels: Record<Key | 'arm' | 'outcome', string>; n: number } | undefined)[] = [];
  private inputTokens = 0;
  private outputTokens = 0;
  private readonly latencySlot: HistogramSlot<Key>;
  private readonly ttftSlot: HistogramSlot<Key>;

  constructor(
    readonly labels: SeriesLabels,
    private readonly metrics: { gatewayRequests: Counter<Key | 'arm' | 'outcome'>; gatewayTokens: Counter<Key | 'direction'>; gatewayLatency: SeriesHistogram<Key>; gatewayTtft: SeriesHistogram<Key> },
  ) {
    this.latencySlot = metrics.gatewayLatency.slot(labels);
    this.ttftSlot = metrics.gatewayTtft.slot(labels);
  }

  request(arm: Arm, outcome: Outcome): void {
    const i = ARM_INDEX[arm] * OUTCOMES + OUTCOME_INDEX[outcome];
    const entry = this.requests[i];
    if (entry) entry.n += 1;
    else this.requests[i] = { labels: { ...this.labels, arm, outcome }, n: 1 };
  }

  tokens(input: number, output: number): void {
    this.inputTokens += input;
    this.outputTokens += output;
  }

  latency(seconds: number, ttftSeconds: number | null): void {
    this.latencySlot.observe(seconds);
    if (ttftSeconds !== null) this.ttftSlot.observe(ttftSeconds);
  }

  /** Hands what was counted since the last scrape to prom-client's counters. */
  drain(): void {
    for (const entry of this.requests) {
      if (!entry || entry.n === 0) continue;
      this.metrics.gatewayRequests.inc(entry.labels, entry.n);
      entry.n = 0;
    }
    if (this.inputTokens) this.metrics.gatewayTokens.inc({ ...this.labels, direction: 'input' }, this.inputTokens);
    if (this.outputTokens) this.metrics.gatewayTokens.inc({ ...this.labels, direction: 'output' }, this.outputTokens);
    this.inputTokens = 0;
    this.outputTokens = 0;
  }
}
