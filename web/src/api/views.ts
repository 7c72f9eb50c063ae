/**
 * The dashboard's names for the API's objects, each the generated type of the route that answers it (openapi.d.ts,
 * from the server's own zod schemas), so a renamed or retyped field fails the dashboard's typecheck. `call` infers a
 * route's type by itself; these names are for props and state (add one where a component needs it).
 */
import type { paths } from './openapi';

type Method = 'get' | 'post';
/** The JSON a route answers with. */
type Json<P extends keyof paths, M extends Method = 'get'> = NonNullable<paths[P][M]> extends { responses: { 200: { content: { 'application/json': infer R } } } } ? R : never;
/** One item of a list route's answer. */
type Item<P extends keyof paths> = Json<P> extends { data: (infer T)[] } ? T : never;

export type Job = Json<'/v1/fine_tuning/jobs/{fine_tuning_job_id}'>;
/** `data` of a metrics event is the trainer's metrics line (jobs/CONTRACT.md). */
export type JobEvent = Item<'/v1/fine_tuning/jobs/{fine_tuning_job_id}/events'>;
export type Estimate = Json<'/v1/fine_tuning/jobs/estimate', 'post'>;

type Dataset = Json<'/v1/datasets/{dataset_id}'>;
export type DatasetStats = NonNullable<Dataset['stats']>;
export type ValidationError = NonNullable<Dataset['report']>['errors'][number];

export type AdapterVersion = Item<'/v1/adapters/{adapter_name}/versions'>;

/** GET /v1/serving/pools/{pool}: replicas, deployments, aliases (the list route gives a summary). */
export type Pool = Json<'/v1/serving/pools/{pool}'>;
export type AliasEvent = Item<'/v1/serving/pools/{pool}/aliases/{adapter_name}/history'>;

/** A run's comparison report (?format=json). */
export type Comparison = Json<'/v1/evals/runs/{run_id}/report'>;
export type ComparisonTarget = Comparison['targets'][number];
export type Proportion = ComparisonTarget['accuracy'];
/** A comparison's report across its suites (?format=json). */
export type BenchmarkReport = Json<'/v1/evals/comparisons/{comparison_id}/report'>;

export type Project = Json<'/v1/project'>;
