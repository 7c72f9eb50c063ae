import { Controller, Delete, Get, HttpCode, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { listOf, toList } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { EvalPrices } from './eval-prices';
import { EvalReports } from './eval-reports';
import { EvalsService } from './evals.service';
import { resultObject, resultView, runObject, runView, suiteObject, suiteView, targetObject, targetView } from './evals.views';
import { comparisonReport } from './report-schema';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)');
const ref = z.string().min(1).max(200);
const createTarget = z
  .object({
    name,
    kind: z.enum(['api', 'base', 'adapter']),
    base_url: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL').optional().describe('api: the endpoint up to /v1 (default OpenAI)'),
    api_key: z.string().min(1).max(4096).optional().describe('api: stored sealed, never returned'),
    model: z.string().min(1).max(200).optional().describe('api: the model name, e.g. o3-mini'),
    pool: name.optional().describe('base/adapter: the serving pool'),
    adapter: name.optional().describe('adapter: the adapter name'),
    version: z.number().int().min(1).optional().describe('adapter: a fixed version (name@vN); unset: the alias'),
    reasoning: z.boolean().optional().describe('max_completion_tokens and no temperature; default: true for o-series models'),
    max_tokens: z.number().int().min(1).max(200_000).default(1024),
    temperature: z.number().min(0).max(2).nullable().optional(),
    concurrency: z.number().int().min(1).max(256).default(4),
    stream: z.boolean().default(false).describe('stream answers (measures time to first token)'),
    usd_per_gpu_hour: z.number().min(0).max(10_000).optional().describe('base/adapter: price of one GPU, for cost'),
    gpus: z.number().int().min(1).max(64).optional().describe('base/adapter: GPUs of one replica'),
  })
  .strict();
const createSuite = z
  .object({
    name,
    dataset_id: z.string().min(1).describe('an eval-format dataset (POST /v1/datasets?format=eval)'),
    scorer: z.union([z.string(), z.record(z.string(), z.unknown())]).describe('a scorer name or config (docs/evals/README.md)'),
    judge_target: ref.optional().describe('llm_judge: the target that grades'),
  })
  .strict();
const createRun = z
  .object({
    suite_id: ref,
    targets: z.array(ref).min(1).max(32),
    baseline: ref.optional().describe('the target others are diffed against (default: the first)'),
  })
  .strict();
const runId = z.string().min(1);
const resultsQuery = z.object({ target: ref.optional(), after: z.coerce.number().int().min(-1).optional(), limit: z.coerce.number().int().min(1).max(500).default(100) });
const reportQuery = z.object({ format: z.enum(['json', 'md', 'html']).default('json') });
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) });
const createdTarget = targetObject.extend({ warnings: z.array(z.string()).describe('e.g. a retired model (the price table dates it)') });
const deletedTarget = z.object({ object: z.literal('eval.target.deleted'), id: z.string(), deleted: z.literal(true) });
const resultsPage = listOf(resultObject);

/** Evals: targets, suites, runs, results and comparison reports. A loraplane extension. */
@Controller('v1/evals')
export class EvalsController {
  constructor(private readonly evals: EvalsService, private readonly reports: EvalReports, private readonly prices: EvalPrices) {}

  @Post('targets')
  @ApiDoc({ summary: 'Create an eval target: an OpenAI-compatible model (key stored sealed), a pool base model, or an adapter on a pool', tags: ['evals'], response: createdTarget })
  async createTarget(@ProjectId() projectId: string, @ZBody(createTarget) b: z.infer<typeof createTarget>) {
    const t = await this.evals.createTarget(projectId, {
      name: b.name, kind: b.kind, baseUrl: b.base_url, apiKey: b.api_key, model: b.model, pool: b.pool, adapter: b.adapter, version: b.version,
      reasoning: b.reasoning, maxTokens: b.max_tokens, temperature: b.temperature, concurrency: b.concurrency, stream: b.stream, usdPerGpuHour: b.usd_per_gpu_hour, gpus: b.gpus,
    });
    // A retired model (price table dates) is created, with a warning: an OpenAI-compatible host may still serve it.
    const warning = t.kind === 'api' ? this.prices.warningFor(t.model) : null;
    return { ...targetView(await this.evals.getTarget(projectId, t.id)), warnings: warning ? [warning] : [] };
  }

  @Get('targets')
  @ApiDoc({ summary: "List the project's eval targets (never their keys)", tags: ['evals'], response: listOf(targetObject) })
  async listTargets(@ProjectId() projectId: string) {
    return toList((await this.evals.listTargets(projectId)).map(targetView));
  }

  @Get('targets/:target')
  @ApiDoc({ summary: 'An eval target, by id or name', tags: ['evals'], response: targetObject })
  async getTarget(@ProjectId() projectId: string, @ZParam('target', ref) target: string) {
    return targetView(await this.evals.getTarget(projectId, target));
  }

  @Delete('targets/:target')
  @ApiDoc({ summary: 'Delete an eval target (refused while a gate or an unfinished run uses it)', tags: ['evals'], response: deletedTarget })
  async deleteTarget(@ProjectId() projectId: string, @ZParam('target', ref) target: string): Promise<z.infer<typeof deletedTarget>> {
    await this.evals.deleteTarget(projectId, target);
    return { object: 'eval.target.deleted', id: target, deleted: true };
  }

  @Post('suites')
  @ApiDoc({ summary: 'Create an eval suite: an eval-format dataset and its scorer (every item is checked against the scorer)', tags: ['evals'], response: suiteObject })
  async createSuite(@ProjectId() projectId: string, @ZBody(createSuite) b: z.infer<typeof createSuite>) {
    return suiteView(await this.evals.createSuite(projectId, { name: b.name, datasetId: b.dataset_id, scorer: b.scorer, judgeTarget: b.judge_target }));
  }

  @Get('suites')
  @ApiDoc({ summary: "List the project's eval suites", tags: ['evals'], response: listOf(suiteObject) })
  async listSuites(@ProjectId() projectId: string) {
    return toList((await this.evals.listSuites(projectId)).map(suiteView));
  }

  @Get('suites/:suite_id')
  @ApiDoc({ summary: 'An eval suite, by id or name', tags: ['evals'], response: suiteObject })
  async getSuite(@ProjectId() projectId: string, @ZParam('suite_id', ref) suite: string) {
    return suiteView(await this.evals.getSuite(projectId, suite));
  }

  @Post('runs')
  @ApiDoc({ summary: "Run a suite against targets (the worker sends every item to every target); progress in GET", tags: ['evals'], response: runObject })
  async createRun(@ProjectId() projectId: string, @ZBody(createRun) b: z.infer<typeof createRun>) {
    const run = await this.evals.createRun(projectId, { suite: b.suite_id, targets: b.targets, baseline: b.baseline });
    const full = await this.evals.getRun(projectId, run.id);
    return runView(full, await this.evals.progress(full));
  }

  @Get('runs')
  @ApiDoc({ summary: 'Recent eval runs, newest first', tags: ['evals'], response: listOf(runObject) })
  async listRuns(@ProjectId() projectId: string, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    return toList((await this.evals.listRuns(projectId, q.limit)).map((r) => runView(r)));
  }

  @Get('runs/:run_id')
  @ApiDoc({ summary: 'A run with its progress per target (results so far, correct, errors)', tags: ['evals'], response: runObject })
  async getRun(@ProjectId() projectId: string, @ZParam('run_id', runId) id: string) {
    const run = await this.evals.getRun(projectId, id);
    return runView(run, await this.evals.progress(run));
  }

  @Post('runs/:run_id/cancel')
  @HttpCode(200)
  @ApiDoc({ summary: 'Cancel an unfinished run (its results so far stay)', tags: ['evals'], response: runObject })
  async cancelRun(@ProjectId() projectId: string, @ZParam('run_id', runId) id: string) {
    const run = await this.evals.cancelRun(projectId, id);
    return runView(run, await this.evals.progress(run));
  }

  @Get('runs/:run_id/results')
  @ApiDoc({ summary: 'Per-item results (output, verdict, latency, usage, attempts), by item index: ?after=<last item>&limit=N items', tags: ['evals'], response: resultsPage })
  async results(@ProjectId() projectId: string, @ZParam('run_id', runId) id: string, @ZQuery(resultsQuery) q: z.infer<typeof resultsQuery>): Promise<z.infer<typeof resultsPage>> {
    const { run, rows, hasMore } = await this.evals.results(projectId, id, q);
    const names = new Map((await this.evals.listTargets(projectId)).filter((t) => run.targetIds.includes(t.id)).map((t) => [t.id, t.name]));
    return { object: 'list' as const, data: rows.map((r) => resultView(r, names)), has_more: hasMore };
  }

  @Get('runs/:run_id/report')
  @ApiDoc({ summary: 'The comparison report: accuracy (95% Wilson), latency, tokens, cost, break-even, per-item wins/losses; ?format=json|md|html', tags: ['evals'], response: comparisonReport, textResponseTypes: ['text/markdown', 'text/html'] })
  async report(@ProjectId() projectId: string, @ZParam('run_id', runId) id: string, @ZQuery(reportQuery) q: z.infer<typeof reportQuery>, @Res() res: Response) {
    const { contentType, body } = await this.reports.render(projectId, id, q.format);
    res.setHeader('content-type', contentType);
    res.send(body);
  }
}
