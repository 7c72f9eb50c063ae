import { Controller, Get, HttpCode, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { listOf, toList } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { ComparisonReports } from './comparison-reports';
import { ComparisonsService, comparisonStatus, ComparisonWithRuns } from './comparisons.service';
import { evalStatus as status, runProgress } from './evals.views';
import { benchmarkReport } from './report-schema';

const ref = z.string().min(1).max(200);
const createComparison = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)'),
    suites: z.array(ref).min(1).max(32).describe('suite ids or names: the benchmarks'),
    targets: z.array(ref).min(1).max(32).describe('target ids or names'),
    baseline: ref.optional().describe('the target others are diffed against (default: the first)'),
  })
  .strict();
const reportQuery = z.object({ format: z.enum(['json', 'md', 'html']).default('json') });
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) });
const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

/** A comparison as every route answers it, documented, so the dashboard and the CLI use the generated type. */
export const comparisonObject = z.object({
  object: z.literal('eval.comparison'),
  id: z.string(),
  name: z.string(),
  status,
  suite_ids: z.array(z.string()),
  target_ids: z.array(z.string()),
  baseline_target_id: z.string().nullable(),
  runs: z.array(
    z.object({ id: z.string(), suite: z.object({ id: z.string(), name: z.string() }), status, total: z.number(), progress: runProgress.nullable() }),
  ),
  progress: runProgress.pick({ done: true, total: true }).nullable().describe('answers scored so far over every suite and target; null in lists'),
  created_at: z.number().nullable(),
});

export function comparisonView(c: ComparisonWithRuns, progress?: Awaited<ReturnType<ComparisonsService['progress']>>): z.infer<typeof comparisonObject> {
  return {
    object: 'eval.comparison' as const,
    id: c.id,
    name: c.name,
    status: comparisonStatus(c.runs),
    suite_ids: c.suiteIds,
    target_ids: c.targetIds,
    baseline_target_id: c.baselineTargetId,
    runs: c.runs.map((r) => ({ id: r.id, suite: { id: r.suite.id, name: r.suite.name }, status: r.status, total: r.total, progress: progress?.runs.find((p) => p.run.id === r.id)?.progress ?? null })),
    progress: progress ? { done: progress.done, total: progress.total } : null,
    created_at: unix(c.createdAt),
  };
}

/** Comparisons: every suite on every target (one run per suite), with one report across them. A loraplane extension. */
@Controller('v1/evals/comparisons')
export class ComparisonsController {
  constructor(private readonly comparisons: ComparisonsService, private readonly reports: ComparisonReports) {}

  @Post()
  @ApiDoc({ summary: 'Run every suite on every target (one eval run per suite); progress in GET', tags: ['evals'], response: comparisonObject })
  async create(@ProjectId() projectId: string, @ZBody(createComparison) b: z.infer<typeof createComparison>) {
    const c = await this.comparisons.create(projectId, b);
    return comparisonView(c, await this.comparisons.progress(c));
  }

  @Get()
  @ApiDoc({ summary: 'Recent comparisons, newest first', tags: ['evals'], response: listOf(comparisonObject) })
  async list(@ProjectId() projectId: string, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    return toList((await this.comparisons.list(projectId, q.limit)).map((c) => comparisonView(c)));
  }

  @Get(':comparison_id')
  @ApiDoc({ summary: 'A comparison, by id or name: status and progress per suite', tags: ['evals'], response: comparisonObject })
  async get(@ProjectId() projectId: string, @ZParam('comparison_id', ref) id: string) {
    const c = await this.comparisons.get(projectId, id);
    return comparisonView(c, await this.comparisons.progress(c));
  }

  @Post(':comparison_id/cancel')
  @HttpCode(200)
  @ApiDoc({ summary: 'Cancel the unfinished runs of a comparison (results so far stay)', tags: ['evals'], response: comparisonObject })
  async cancel(@ProjectId() projectId: string, @ZParam('comparison_id', ref) id: string) {
    const c = await this.comparisons.cancel(projectId, id);
    return comparisonView(c, await this.comparisons.progress(c));
  }

  @Get(':comparison_id/report')
  @ApiDoc({ summary: 'Accuracy per benchmark x target (95% Wilson), latency p50/p95 and TTFT, tokens, $/1M tokens, $/month at 1M and 10M tokens/day, GPU $/h vs API with break-even; ?format=json|md|html', tags: ['evals'], response: benchmarkReport, textResponseTypes: ['text/markdown', 'text/html'] })
  async report(@ProjectId() projectId: string, @ZParam('comparison_id', ref) id: string, @ZQuery(reportQuery) q: z.infer<typeof reportQuery>, @Res() res: Response) {
    const { contentType, body } = await this.reports.render(projectId, id, q.format);
    res.setHeader('content-type', contentType);
    res.send(body);
  }
}
