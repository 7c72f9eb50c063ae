/**
 * The JSON forms of eval reports as zod schemas: a run's comparison (GET /v1/evals/runs/{id}/report?format=json)
 * and a comparison's benchmark report (GET /v1/evals/comparisons/{id}/report?format=json). The report types are
 * inferred from them, so the OpenAPI document (and the dashboard's and CLI's generated types) cannot drift from what
 * the report code builds. The number types of stats.ts and cost-model.ts keep their interfaces; the checks at the
 * end fail the compile if a schema here and its interface part ways.
 */
import { z } from 'zod';
import type { BreakEven, MonthlyCost } from './cost-model';
import { evalStatus } from './evals.views';
import type { LatencySummary, Proportion } from './stats';
import type { Assert, Same } from '../common/type-equality';

const targetKind = z.enum(['api', 'base', 'adapter']);

/** k correct of n items, with the 95% Wilson interval; rate is null when n = 0. */
export const proportion = z.object({ k: z.number(), n: z.number(), rate: z.number().nullable(), low: z.number(), high: z.number() });
const latencySummary = z.object({ count: z.number(), mean: z.number().nullable(), p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() });
const monthlyCost = z.object({ tokens_per_day: z.number(), usd_per_month: z.number().nullable(), replicas: z.number().nullable() });
const breakEven = z.object({ api_target: z.string(), tokens_per_day: z.number().nullable(), self_hosted_cheaper_from_tokens_per_day: z.number().nullable() });

export const reportTarget = z.object({
  name: z.string(),
  kind: targetKind,
  model: z.string().describe('the model behind it: "o3-mini", "gpt-oss-20b", "ft:gpt-oss-20b:acme:tickets:ftjob-1"'),
  accuracy: proportion,
  latency_ms: latencySummary,
  ttft_ms_p50: z.number().nullable().describe('time to first token, median; null when the target was not streamed'),
  tokens: z.object({ input: z.number(), output: z.number() }),
  usd_per_request: z.number().nullable(),
  usd_per_1m_tokens: z.number().nullable(),
  monthly: z.array(monthlyCost),
  break_even: z.array(breakEven).describe('self-hosted targets: break-even against each API target (same work); empty for API targets'),
  results: z.array(z.object({ index: z.number(), correct: z.boolean(), error: z.string().nullable().describe('why the request failed (the item counts as wrong)') })),
});

export const comparisonReport = z.object({
  suite: z.object({ name: z.string(), scorer: z.string(), items: z.number() }),
  created_at: z.string(),
  baseline: z.string().nullable().describe('the target the others are diffed against; null: no per-item diff'),
  items: z.array(z.object({ index: z.number(), prompt: z.string() })).describe('each item\'s prompt as text, for the per-item diff'),
  targets: z.array(reportTarget),
});

export const benchmarkReport = z.object({
  name: z.string(),
  status: evalStatus,
  created_at: z.string(),
  baseline: z.string().nullable(),
  targets: z.array(z.object({ name: z.string(), kind: targetKind, model: z.string(), usd_per_gpu_hour: z.number().nullable(), gpus: z.number().nullable() })),
  benchmarks: z
    .array(z.object({ suite: z.string(), scorer: z.string(), items: z.number(), accuracy: z.record(z.string(), proportion) }))
    .describe('one row per suite, in the order given: accuracy of each target (by name)'),
  overall: comparisonReport.describe("every suite's results as one list (item indexes run on from one suite to the next): latency, tokens, cost, break-even"),
  warnings: z.array(z.string()),
});

/** Compile-time only: each schema describes exactly its interface. */
export type SchemaMatchesInterfaces = [
  Assert<Same<z.infer<typeof proportion>, Proportion>>,
  Assert<Same<z.infer<typeof latencySummary>, LatencySummary>>,
  Assert<Same<z.infer<typeof monthlyCost>, MonthlyCost>>,
  Assert<Same<z.infer<typeof breakEven>, { api_target: string } & BreakEven>>,
];
