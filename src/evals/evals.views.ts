import type { EvalGate, EvalResult, EvalRun, EvalSuite, EvalTarget } from '../generated/prisma/client';
import { targetModelName } from './target-endpoints';

/** API shapes of eval objects (snake_case, unix seconds). A target's key never leaves the database. */
const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

export function targetView(t: EvalTarget & { pool: { name: string } | null }) {
  return {
    object: 'eval.target' as const,
    id: t.id,
    name: t.name,
    kind: t.kind,
    model: targetModelName(t),
    base_url: t.baseUrl,
    has_api_key: t.apiKeySealed !== null,
    pool: t.pool?.name ?? null,
    adapter: t.kind === 'adapter' ? t.model : null,
    version: t.adapterVersion,
    reasoning: t.reasoning,
    max_tokens: t.maxTokens,
    temperature: t.temperature,
    concurrency: t.concurrency,
    stream: t.stream,
    usd_per_gpu_hour: t.usdPerGpuHour,
    gpus: t.gpus,
    created_at: unix(t.createdAt),
  };
}

export function suiteView(s: EvalSuite) {
  return { object: 'eval.suite' as const, id: s.id, name: s.name, dataset_id: s.datasetId, scorer: s.scorer, judge_target_id: s.judgeTargetId, items: s.items, created_at: unix(s.createdAt) };
}

export function runView(r: EvalRun & { suite: EvalSuite }, progress?: { done: number; total: number; targets: { target: string; done: number; correct: number; errors: number }[] }) {
  return {
    object: 'eval.run' as const,
    id: r.id,
    suite: { id: r.suite.id, name: r.suite.name },
    status: r.status,
    target_ids: r.targetIds,
    baseline_target_id: r.baselineTargetId,
    total: r.total,
    progress: progress ?? null,
    error: r.error,
    created_at: unix(r.createdAt),
    started_at: unix(r.startedAt),
    finished_at: unix(r.finishedAt),
  };
}

export function resultView(r: EvalResult, names: Map<string, string>) {
  return {
    object: 'eval.result' as const,
    item: r.itemIndex,
    target: names.get(r.targetId) ?? r.targetId,
    correct: r.correct,
    output: r.output,
    detail: r.detail,
    error: r.error,
    latency_ms: r.latencyMs,
    ttft_ms: r.ttftMs,
    usage: r.inputTokens === null ? null : { input_tokens: r.inputTokens, cached_input_tokens: r.cachedInputTokens, output_tokens: r.outputTokens, reasoning_tokens: r.reasoningTokens },
    attempts: r.attempts,
  };
}

export function gateView(g: EvalGate & { suite: { name: string }; pool: { name: string } }, baselineName: string) {
  return {
    object: 'eval.gate' as const,
    id: g.id,
    pool: g.pool.name,
    adapter: g.adapterName === '*' ? null : g.adapterName,
    suite: { id: g.suiteId, name: g.suite.name },
    baseline_target: baselineName,
    min_margin: g.minMargin,
    updated_at: unix(g.updatedAt),
  };
}
