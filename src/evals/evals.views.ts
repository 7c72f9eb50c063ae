import { z } from 'zod';
import type { EvalGate, EvalResult, EvalRun, EvalSuite, EvalTarget } from '../generated/prisma/client';
import { SCORER_NAMES } from './scorers';
import { targetModelName } from './target-endpoints';

/**
 * API shapes of eval objects (snake_case, unix seconds). A target's key never leaves the database. Each view has
 * its schema beside it: the routes document it, so the dashboard and the CLI read these through the generated types.
 */
const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

export const evalStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
export const targetProgress = z.object({ target: z.string(), done: z.number(), correct: z.number(), errors: z.number() });
/** Answers scored so far over all targets, and per target. */
export const runProgress = z.object({ done: z.number(), total: z.number(), targets: z.array(targetProgress) });
const suiteRef = z.object({ id: z.string(), name: z.string() });

export const targetObject = z.object({
  object: z.literal('eval.target'),
  id: z.string(),
  name: z.string(),
  kind: z.enum(['api', 'base', 'adapter']),
  model: z.string().describe('the model name sent: api the provider model, base the pool\'s served name, adapter name or name@vN'),
  base_url: z.string().nullable(),
  has_api_key: z.boolean(),
  pool: z.string().nullable(),
  adapter: z.string().nullable(),
  version: z.number().nullable(),
  reasoning: z.boolean(),
  max_tokens: z.number(),
  temperature: z.number().nullable(),
  concurrency: z.number(),
  stream: z.boolean(),
  usd_per_gpu_hour: z.number().nullable(),
  gpus: z.number().nullable(),
  created_at: z.number(),
});

export function targetView(t: EvalTarget & { pool: { name: string } | null }): z.infer<typeof targetObject> {
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
    created_at: seconds(t.createdAt),
  };
}

export const suiteObject = z.object({
  object: z.literal('eval.suite'),
  id: z.string(),
  name: z.string(),
  dataset_id: z.string(),
  scorer: z.object({ type: z.enum(SCORER_NAMES) }).catchall(z.unknown()).describe('the scorer config as parsed, defaults filled in (docs/evals/README.md)'),
  judge_target_id: z.string().nullable(),
  items: z.number(),
  created_at: z.number(),
});

export function suiteView(s: EvalSuite): z.infer<typeof suiteObject> {
  const scorer = s.scorer as z.infer<typeof suiteObject>['scorer']; // stored as parseScorerConfig returned it
  return { object: 'eval.suite' as const, id: s.id, name: s.name, dataset_id: s.datasetId, scorer, judge_target_id: s.judgeTargetId, items: s.items, created_at: seconds(s.createdAt) };
}

/** How a run failed (eval-runner.ts writes it). */
const runError = z.object({ code: z.string(), message: z.string() });

export const runObject = z.object({
  object: z.literal('eval.run'),
  id: z.string(),
  suite: suiteRef,
  status: evalStatus,
  target_ids: z.array(z.string()),
  baseline_target_id: z.string().nullable(),
  total: z.number().describe('items x targets'),
  progress: runProgress.nullable().describe('null in lists'),
  error: runError.nullable(),
  created_at: z.number(),
  started_at: z.number().nullable(),
  finished_at: z.number().nullable(),
});

export function runView(r: EvalRun & { suite: EvalSuite }, progress?: z.infer<typeof runProgress>): z.infer<typeof runObject> {
  return {
    object: 'eval.run' as const,
    id: r.id,
    suite: { id: r.suite.id, name: r.suite.name },
    status: r.status,
    target_ids: r.targetIds,
    baseline_target_id: r.baselineTargetId,
    total: r.total,
    progress: progress ?? null,
    error: r.error === null ? null : runError.parse(r.error),
    created_at: seconds(r.createdAt),
    started_at: unix(r.startedAt),
    finished_at: unix(r.finishedAt),
  };
}

export const resultObject = z.object({
  object: z.literal('eval.result'),
  item: z.number(),
  target: z.string().describe("the target's name (its id once deleted)"),
  correct: z.boolean(),
  output: z.string().nullable(),
  detail: z.string().nullable(),
  error: z.string().nullable(),
  latency_ms: z.number().nullable(),
  ttft_ms: z.number().nullable(),
  usage: z
    .object({ input_tokens: z.number(), cached_input_tokens: z.number().nullable(), output_tokens: z.number().nullable(), reasoning_tokens: z.number().nullable() })
    .nullable(),
  attempts: z.number(),
});

export function resultView(r: EvalResult, names: Map<string, string>): z.infer<typeof resultObject> {
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

export const gateObject = z.object({
  object: z.literal('eval.gate'),
  id: z.string(),
  pool: z.string(),
  adapter: z.string().nullable().describe("null: the pool's gate, for every alias without its own"),
  suite: suiteRef,
  baseline_target: z.string(),
  min_margin: z.number(),
  updated_at: z.number(),
});

export function gateView(g: EvalGate & { suite: { name: string }; pool: { name: string } }, baselineName: string): z.infer<typeof gateObject> {
  return {
    object: 'eval.gate' as const,
    id: g.id,
    pool: g.pool.name,
    adapter: g.adapterName === '*' ? null : g.adapterName,
    suite: { id: g.suiteId, name: g.suite.name },
    baseline_target: baselineName,
    min_margin: g.minMargin,
    updated_at: seconds(g.updatedAt),
  };
}
