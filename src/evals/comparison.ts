/**
 * A run's result rows turned into the Comparison that report.ts and report-html.ts render: accuracy with its Wilson
 * interval, latency percentiles over the answered requests, tokens, and cost (cost-model.ts: API targets from the
 * price table, self-hosted ones from their GPU $/hour over the throughput measured during the run). Pure: the rows
 * come from the caller.
 */
import { apiCost, breakEven, monthlyProjection, sameWorkUsdPer1m, selfHostedCost } from './cost-model';
import { EvalItem, promptText } from './eval-item';
import { priceOf, PriceTable } from './prices';
import { Comparison, ComparisonTarget, TargetKind } from './report';
import { busyMs } from './retry-policy';
import { latencySummary, percentile, tokenTotals, wilsonInterval } from './stats';

export interface TargetInfo {
  id: string;
  name: string;
  kind: TargetKind;
  /** What answered: "o3-mini", "tiny-lora", "tickets@v2". */
  model: string;
  usdPerGpuHour: number | null;
  gpus: number | null;
}

export interface ResultRow {
  targetId: string;
  itemIndex: number;
  correct: boolean;
  error: string | null;
  sentAt: Date | null;
  latencyMs: number | null;
  ttftMs: number | null;
  inputTokens: number | null;
  cachedInputTokens: number | null;
  outputTokens: number | null;
}

export interface ComparisonInput {
  suite: { name: string; scorer: string };
  createdAt: Date;
  items: EvalItem[];
  targets: TargetInfo[];
  baselineTargetId: string | null;
  rows: ResultRow[];
  prices: PriceTable;
}

export function buildComparison(input: ComparisonInput): Comparison {
  const partial = input.targets.map((t) => measure(t, input.rows.filter((r) => r.targetId === t.id), input.prices));
  const apis = partial.filter((p) => p.target.kind === 'api' && p.target.usd_per_request !== null);
  const targets = partial.map(({ target, self }) => {
    if (!self) return target;
    // Break-even against each API target for the same work: the API's cost per request over this target's tokens.
    target.break_even = apis
      .filter(() => self.tokens_per_request !== null && self.tokens_per_request > 0)
      .map((a) => ({ api_target: a.target.name, ...breakEven(self, sameWorkUsdPer1m(a.target.usd_per_request!, self.tokens_per_request!)) }));
    return target;
  });
  return {
    suite: { name: input.suite.name, scorer: input.suite.scorer, items: input.items.length },
    created_at: input.createdAt.toISOString(),
    baseline: input.targets.find((t) => t.id === input.baselineTargetId)?.name ?? null,
    items: input.items.map((item, index) => ({ index, prompt: promptText(item.prompt) })),
    targets,
  };
}

function measure(t: TargetInfo, rows: ResultRow[], prices: PriceTable): { target: ComparisonTarget; self: ReturnType<typeof selfHostedCost> | null } {
  const answered = rows.filter((r) => r.error === null && r.latencyMs !== null);
  const usages = rows.map((r) => (r.inputTokens === null ? null : { input_tokens: r.inputTokens, cached_input_tokens: r.cachedInputTokens ?? 0, output_tokens: r.outputTokens ?? 0 }));
  const tokens = tokenTotals(usages);
  const ttfts = answered.map((r) => r.ttftMs).filter((x): x is number => x !== null);
  const target: ComparisonTarget = {
    name: t.name,
    kind: t.kind,
    model: t.model,
    accuracy: wilsonInterval(rows.filter((r) => r.correct).length, rows.length),
    latency_ms: latencySummary(answered.map((r) => r.latencyMs!)),
    ttft_ms_p50: percentile(ttfts, 50),
    tokens: { input: tokens.input_tokens, output: tokens.output_tokens },
    usd_per_request: null,
    usd_per_1m_tokens: null,
    monthly: [],
    break_even: [],
    results: [...rows].sort((a, b) => a.itemIndex - b.itemIndex).map((r) => ({ index: r.itemIndex, correct: r.correct, error: r.error })),
  };
  const requests = tokens.requests - tokens.without_usage;
  if (t.kind === 'api') {
    const price = priceOf(prices, t.model);
    if (price && requests > 0) {
      const cost = apiCost(price, { requests, input_tokens: tokens.input_tokens, cached_input_tokens: tokens.cached_input_tokens, output_tokens: tokens.output_tokens });
      target.usd_per_request = cost.usd_per_request;
      target.usd_per_1m_tokens = cost.usd_per_1m_tokens;
      target.monthly = monthlyProjection({ kind: 'api', usd_per_1m_tokens: cost.usd_per_1m_tokens });
    }
    return { target, self: null };
  }
  const wallMs = busyMs(answered.filter((r) => r.sentAt).map((r) => ({ startMs: r.sentAt!.getTime(), durationMs: r.latencyMs! })));
  if (t.usdPerGpuHour === null || t.gpus === null || wallMs <= 0) return { target, self: null };
  const self = selfHostedCost({ usd_per_gpu_hour: t.usdPerGpuHour, gpus: t.gpus, requests, total_tokens: tokens.total_tokens, wall_seconds: wallMs / 1000 });
  target.usd_per_request = self.usd_per_request;
  target.usd_per_1m_tokens = self.usd_per_1m_tokens;
  target.monthly = monthlyProjection({ kind: 'self_hosted', usd_per_hour: self.usd_per_hour, tokens_per_second: self.tokens_per_second });
  return { target, self };
}
