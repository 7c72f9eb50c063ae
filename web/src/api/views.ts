/**
 * Response shapes of routes whose OpenAPI entry has no response schema yet (the document types their bodies as
 * `unknown`). Each mirrors the server's view function named beside it; where the document does describe a
 * response, use the generated type instead (see `Dataset`).
 */
import type { paths } from './openapi';

export interface Page<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
}

type Json<P extends keyof paths> = paths[P] extends { get: { responses: { 200: { content: { 'application/json': infer R } } } } } ? R : never;

/** src/training/job-views.ts jobObject (generated from the OpenAPI document) */
export type Job = Json<'/v1/fine_tuning/jobs/{fine_tuning_job_id}'>;
/** jobEventObject; `data` of a metrics event is the trainer's metrics line (jobs/CONTRACT.md). */
export type JobEvent = Json<'/v1/fine_tuning/jobs/{fine_tuning_job_id}/events'>['data'][number];

/** toCheckpointObject */
export interface Checkpoint {
  id: string;
  created_at: number;
  fine_tuned_model_checkpoint: string;
  step_number: number;
  metrics: Record<string, number>;
  key_prefix: string;
}

export type Dataset = paths['/v1/datasets/{dataset_id}']['get']['responses'][200]['content']['application/json'];

export interface DatasetStats {
  examples?: number;
  lines?: number;
  tokens?: { total: number; histogram?: Record<string, number>; [k: string]: unknown } | null;
  [k: string]: unknown;
}
export interface ValidationError {
  line: number;
  field?: string | null;
  code: string;
  message: string;
}

/** POST /v1/fine_tuning/jobs/estimate */
export interface Estimate {
  model: string;
  method: string;
  hyperparameters: Record<string, unknown>;
  [k: string]: unknown;
}

/** src/adapters/adapters.controller.ts */
export interface Adapter {
  name: string;
  [k: string]: unknown;
}
export interface AdapterVersion {
  version: number;
  adapter?: string;
  source?: string;
  sha256?: string;
  files?: { name: string; bytes: number; sha256: string }[];
  lineage?: Record<string, unknown> | null;
  created_at?: number;
  [k: string]: unknown;
}

/** GET /v1/serving/pools: a summary per pool (serving.controller.ts list) */
export interface PoolSummary {
  name: string;
  base_model: string;
  replicas: number;
}

/** src/serving/serving.views.ts poolView (GET /v1/serving/pools/{pool}) */
export interface Pool {
  name: string;
  base_model: string;
  max_lora_rank: number;
  max_loras: number;
  revision: number;
  replicas: { name: string; status: string; in_sync: boolean; last_error: string | null; adapters: { name: string; version: number | null; state: string; error: string | null }[] }[];
  deployments: { adapter: string; version: number; served_name: string; warning: string | null }[];
  aliases: { adapter: string; version: number | null; canary: { version: number | null; by: 'replicas' | 'requests'; replicas: number; request_share: number | null } | null }[];
}
/** aliasEventView */
export interface AliasEvent {
  id: string;
  action: string;
  from_version: number | null;
  to_version: number | null;
  canary_replicas: number | null;
  canary_request_share?: number | null;
  actor: string | null;
  reason: string | null;
  created_at: number;
}

/** src/evals/evals.views.ts */
export interface EvalRun {
  id: string;
  status: string;
  suite?: string | { name?: string };
  suite_id?: string;
  targets?: unknown[];
  created_at?: number;
  [k: string]: unknown;
}
/** src/evals/report.ts Comparison */
export interface Comparison {
  suite: { name: string; scorer: string; items: number };
  created_at: string;
  baseline: string | null;
  items: { index: number; prompt: string }[];
  targets: ComparisonTarget[];
}
export interface ComparisonTarget {
  name: string;
  kind: string;
  model: string;
  accuracy: { k: number; n: number; rate: number | null; low: number; high: number };
  latency_ms: { count: number; p50: number | null; p95: number | null; p99: number | null };
  ttft_ms_p50: number | null;
  tokens: { input: number; output: number };
  usd_per_request: number | null;
  usd_per_1m_tokens: number | null;
  monthly: { tokens_per_day: number; usd_per_month: number | null; replicas: number | null }[];
  break_even: { api_target: string; tokens_per_day: number | null; self_hosted_cheaper_from_tokens_per_day: number | null }[];
  results: { index: number; correct: boolean; error?: string | null }[];
}

/** src/evals/comparisons.controller.ts comparisonObject (generated) */
export type EvalComparison = Json<'/v1/evals/comparisons/{comparison_id}'>;
export type Proportion = ComparisonTarget['accuracy'];
/** src/evals/comparison-report.ts BenchmarkReport (GET /v1/evals/comparisons/{id}/report?format=json) */
export interface BenchmarkReport {
  name: string;
  status: string;
  created_at: string;
  baseline: string | null;
  targets: { name: string; kind: string; model: string; usd_per_gpu_hour: number | null; gpus: number | null }[];
  benchmarks: { suite: string; scorer: string; items: number; accuracy: Record<string, Proportion> }[];
  /** Every suite's results as one list: item indexes run on from one suite to the next, in `benchmarks` order. */
  overall: Comparison;
  warnings: string[];
}

export interface Project {
  id: string;
  name: string;
  slug: string;
  scopes: string[];
}
