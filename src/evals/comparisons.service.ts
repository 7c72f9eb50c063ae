import { Injectable } from '@nestjs/common';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { PrismaService } from '../db/prisma.service';
import { EvalComparison, EvalRun, EvalRunStatus, EvalSuite } from '../generated/prisma/client';
import { EvalsQueue } from './evals.queue';
import { EvalsService } from './evals.service';

export interface CreateComparison {
  name: string;
  suites: string[];
  targets: string[];
  baseline?: string;
}

export type ComparisonWithRuns = EvalComparison & { runs: (EvalRun & { suite: EvalSuite })[] };

/**
 * Comparisons: every suite on every target, as one EvalRun per suite (the runner, its concurrency, retries and
 * resumption are the runs'). A comparison is a name over its runs; its status is read from theirs.
 */
@Injectable()
export class ComparisonsService {
  constructor(private readonly prisma: PrismaService, private readonly evals: EvalsService, private readonly queue: EvalsQueue) {}

  async create(projectId: string, input: CreateComparison): Promise<ComparisonWithRuns> {
    if (await this.prisma.evalComparison.findUnique({ where: { projectId_name: { projectId, name: input.name } } })) {
      throw new DomainError('invalid_request', `A comparison named '${input.name}' already exists in this project`, 'name');
    }
    const suites: EvalSuite[] = [];
    for (const [i, ref] of input.suites.entries()) suites.push(await this.evals.getSuite(projectId, ref, `suites[${i}]`));
    if (new Set(suites.map((s) => s.id)).size !== suites.length) throw new DomainError('invalid_request', 'A suite is listed twice', 'suites');
    const targets = [];
    for (const [i, ref] of input.targets.entries()) targets.push(await this.evals.getTarget(projectId, ref, `targets[${i}]`));
    if (new Set(targets.map((t) => t.id)).size !== targets.length) throw new DomainError('invalid_request', 'A target is listed twice', 'targets');
    let baselineTargetId = targets[0].id;
    if (input.baseline !== undefined) {
      const b = targets.find((t) => t.id === input.baseline || t.name === input.baseline);
      if (!b) throw new DomainError('invalid_request', `The baseline '${input.baseline}' must be one of the comparison's targets`, 'baseline');
      baselineTargetId = b.id;
    }
    const targetIds = targets.map((t) => t.id);
    const id = newId.evalComparison();
    // The comparison and all its runs, or nothing. The tasks follow; were the queue down, the worker re-enqueues
    // every unfinished run at its start.
    const runIds = await this.prisma.$transaction(async (tx) => {
      await tx.evalComparison.create({ data: { id, projectId, name: input.name, suiteIds: suites.map((s) => s.id), targetIds, baselineTargetId } });
      const ids: string[] = [];
      for (const suite of suites) {
        const run = await tx.evalRun.create({ data: { id: newId.evalRun(), projectId, suiteId: suite.id, comparisonId: id, targetIds, baselineTargetId, total: suite.items * targets.length } });
        ids.push(run.id);
      }
      return ids;
    });
    for (const runId of runIds) await this.queue.enqueue('run.execute', { runId });
    return this.get(projectId, id);
  }

  /** By id or name, with its runs in the order of its suites. */
  async get(projectId: string, ref: string): Promise<ComparisonWithRuns> {
    const c = await this.prisma.evalComparison.findFirst({ where: { projectId, OR: [{ id: ref }, { name: ref }] }, include: { runs: { include: { suite: true } } } });
    if (!c) throw notFound('comparison', ref, 'comparison_id');
    c.runs.sort((a, b) => c.suiteIds.indexOf(a.suiteId) - c.suiteIds.indexOf(b.suiteId));
    return c;
  }

  list(projectId: string, limit: number) {
    return this.prisma.evalComparison.findMany({ where: { projectId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit, include: { runs: { include: { suite: true } } } });
  }

  /** Items scored over all runs and targets, and each run's own progress. */
  async progress(c: ComparisonWithRuns) {
    const runs = [];
    for (const run of c.runs) runs.push({ run, progress: await this.evals.progress(run) });
    return { done: runs.reduce((n, r) => n + r.progress.done, 0), total: runs.reduce((n, r) => n + r.progress.total, 0), runs };
  }

  /** Cancels every unfinished run (their results so far stay). */
  async cancel(projectId: string, ref: string): Promise<ComparisonWithRuns> {
    const c = await this.get(projectId, ref);
    const changed = await this.prisma.evalRun.updateMany({ where: { comparisonId: c.id, projectId, status: { in: ['queued', 'running'] } }, data: { status: 'cancelled', finishedAt: new Date() } });
    if (changed.count === 0) throw new DomainError('invalid_state', `Comparison ${c.name} has already finished (${comparisonStatus(c.runs)})`, 'comparison_id');
    return this.get(projectId, c.id);
  }
}

/** queued until a run starts; running while any run is unfinished; then failed, cancelled or succeeded, worst first. */
export function comparisonStatus(runs: { status: EvalRunStatus }[]): EvalRunStatus {
  const has = (s: EvalRunStatus) => runs.some((r) => r.status === s);
  if (runs.every((r) => r.status === 'queued')) return 'queued';
  if (has('queued') || has('running')) return 'running';
  if (has('failed')) return 'failed';
  if (has('cancelled')) return 'cancelled';
  return 'succeeded';
}
