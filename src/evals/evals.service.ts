import { Injectable } from '@nestjs/common';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { TargetGuard } from '../common/net/target-guard';
import { SecretBox } from '../common/secret-box';
import { Quotas } from '../projects/quotas';
import { PrismaService } from '../db/prisma.service';
import { EvalRun, EvalTarget, EvalTargetKind, Prisma } from '../generated/prisma/client';
import { EvalsQueue } from './evals.queue';
import { createScorer, parseScorerConfig } from './scorers';
import { SuiteItems } from './suite-items';
import { servedName } from '../serving/served-name';

export interface CreateTarget {
  name: string;
  kind: EvalTargetKind;
  baseUrl?: string;
  apiKey?: string;
  model?: string;
  pool?: string;
  adapter?: string;
  version?: number;
  reasoning?: boolean;
  maxTokens: number;
  temperature?: number | null;
  concurrency: number;
  stream: boolean;
  usdPerGpuHour?: number;
  gpus?: number;
}

export interface CreateSuite {
  name: string;
  datasetId: string;
  scorer: unknown;
  judgeTarget?: string;
}

export interface CreateRun {
  suite: string;
  targets: string[];
  baseline?: string;
}

const OPENAI_URL = 'https://api.openai.com/v1';
/** OpenAI's reasoning models: o1, o3, o3-mini, o4-mini... (and their dated snapshots). */
export const isReasoningModel = (model: string) => /^o\d/.test(model);

/**
 * Eval targets, suites and runs (the api side). Nothing here calls a target: a run is a row and a queue task; the
 * worker's EvalRunner does the calls. Every query filters by the caller's project.
 */
@Injectable()
export class EvalsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly secrets: SecretBox,
    private readonly queue: EvalsQueue,
    private readonly items: SuiteItems,
    private readonly guard: TargetGuard,
    private readonly quotas: Quotas,
  ) {}

  async createTarget(projectId: string, input: CreateTarget): Promise<EvalTarget> {
    if (await this.prisma.evalTarget.findUnique({ where: { projectId_name: { projectId, name: input.name } } })) {
      throw new DomainError('invalid_request', `An eval target named '${input.name}' already exists in this project`, 'name');
    }
    await this.quotas.assertEvalTargets(projectId);
    const common = {
      id: newId.evalTarget(),
      projectId,
      name: input.name,
      kind: input.kind,
      maxTokens: input.maxTokens,
      concurrency: input.concurrency,
      stream: input.stream,
      usdPerGpuHour: input.usdPerGpuHour ?? null,
      gpus: input.gpus ?? null,
    };
    if (input.kind === 'api') {
      if (!input.model) throw new DomainError('invalid_request', "An api target needs 'model'", 'model');
      for (const field of ['pool', 'adapter', 'version'] as const) {
        if (input[field] !== undefined) throw new DomainError('invalid_request', `'${field}' is for base and adapter targets`, field);
      }
      const reasoning = input.reasoning ?? isReasoningModel(input.model);
      if (reasoning && input.temperature !== undefined && input.temperature !== null) {
        throw new DomainError('invalid_request', `'${input.model}' is a reasoning model: it does not accept 'temperature'`, 'temperature');
      }
      const baseUrl = input.baseUrl ?? OPENAI_URL;
      await this.guard.assertAllowed(baseUrl, 'base_url');
      return this.prisma.evalTarget.create({
        data: {
          ...common,
          baseUrl,
          model: input.model,
          apiKeySealed: input.apiKey ? this.secrets.seal(input.apiKey, { purpose: 'eval_target.api_key', id: common.id }) : null,
          reasoning,
          temperature: reasoning ? null : (input.temperature ?? 0),
        },
      });
    }
    if (input.apiKey !== undefined || input.baseUrl !== undefined) {
      throw new DomainError('invalid_request', `A ${input.kind} target is called on its pool's replicas; 'base_url' and 'api_key' are for api targets`, input.apiKey !== undefined ? 'api_key' : 'base_url');
    }
    if (!input.pool) throw new DomainError('invalid_request', `A ${input.kind} target needs 'pool'`, 'pool');
    const pool = await this.prisma.servingPool.findUnique({ where: { projectId_name: { projectId, name: input.pool } } });
    if (!pool) throw notFound('serving pool', input.pool, 'pool');
    let model = pool.servedModelName;
    if (input.kind === 'adapter') {
      if (!input.adapter) throw new DomainError('invalid_request', "An adapter target needs 'adapter' (and 'version', or none for the alias)", 'adapter');
      const adapter = await this.prisma.adapter.findUnique({ where: { projectId_name: { projectId, name: input.adapter } } });
      if (!adapter) throw notFound('adapter', input.adapter, 'adapter');
      if (input.version !== undefined && !(await this.prisma.adapterVersion.findFirst({ where: { adapterId: adapter.id, projectId, version: input.version, deletedAt: null } }))) {
        throw notFound('adapter version', servedName(input.adapter, input.version), 'version');
      }
      model = input.adapter;
    } else if (input.adapter !== undefined || input.version !== undefined) {
      throw new DomainError('invalid_request', "'adapter' and 'version' are for adapter targets", input.adapter !== undefined ? 'adapter' : 'version');
    }
    return this.prisma.evalTarget.create({
      data: { ...common, poolId: pool.id, model, adapterVersion: input.version ?? null, reasoning: input.reasoning ?? false, temperature: input.temperature === undefined ? 0 : input.temperature },
    });
  }

  listTargets(projectId: string) {
    return this.prisma.evalTarget.findMany({ where: { projectId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], include: { pool: { select: { name: true } } } });
  }

  /** By id or by name. */
  async getTarget(projectId: string, ref: string, param = 'target') {
    const t = await this.prisma.evalTarget.findFirst({ where: { projectId, OR: [{ id: ref }, { name: ref }] }, include: { pool: { select: { name: true } } } });
    if (!t) throw notFound('eval target', ref, param);
    return t;
  }

  async deleteTarget(projectId: string, ref: string): Promise<void> {
    const t = await this.getTarget(projectId, ref);
    const gates = await this.prisma.evalGate.count({ where: { projectId, baselineTargetId: t.id } });
    if (gates > 0) throw new DomainError('invalid_state', `Target '${t.name}' is the baseline of ${gates} promotion gate(s); change them first`, 'target');
    const live = await this.prisma.evalRun.count({ where: { projectId, status: { in: ['queued', 'running'] }, targetIds: { has: t.id } } });
    if (live > 0) throw new DomainError('invalid_state', `Target '${t.name}' is in ${live} unfinished run(s)`, 'target');
    await this.prisma.evalTarget.delete({ where: { id: t.id } });
  }

  async assertSuiteNameFree(projectId: string, name: string): Promise<void> {
    if (await this.prisma.evalSuite.findUnique({ where: { projectId_name: { projectId, name } } })) {
      throw new DomainError('invalid_request', `An eval suite named '${name}' already exists in this project`, 'name');
    }
  }

  async createSuite(projectId: string, input: CreateSuite) {
    await this.assertSuiteNameFree(projectId, input.name);
    const dataset = await this.prisma.dataset.findFirst({ where: { id: input.datasetId, projectId, deletedAt: null } });
    if (!dataset) throw notFound('file', input.datasetId, 'dataset_id');
    if (dataset.status !== 'ready' || dataset.format !== 'eval') {
      throw new DomainError('invalid_request', `File ${dataset.id} is not a valid eval-format dataset (format ${dataset.format}, ${dataset.status}); upload it with ?format=eval`, 'dataset_id');
    }
    const scorer = parseScorerConfig(input.scorer);
    let judgeTargetId: string | null = null;
    if (scorer.type === 'llm_judge') {
      if (!input.judgeTarget) throw new DomainError('invalid_request', "The llm_judge scorer needs 'judge_target'", 'judge_target');
      judgeTargetId = (await this.getTarget(projectId, input.judgeTarget, 'judge_target')).id;
    }
    // Every item must carry what its scorer needs (a reference with a number, choices, a pattern that compiles):
    // better refused now, naming the item, than as N errored results after calling every target. Streamed, counted
    // and capped: the request never holds the dataset.
    const check = scorer.type === 'llm_judge' ? null : createScorer(scorer);
    let count = 0;
    for await (const item of this.items.stream(projectId, dataset.id)) {
      const i = count++;
      try {
        check?.score(item, '');
      } catch (err) {
        if (err instanceof DomainError) throw new DomainError('invalid_request', `item ${i} (line ${i + 1}): ${err.message}`, 'scorer', { cause: err });
        throw err;
      }
    }
    return this.prisma.evalSuite.create({
      data: { id: newId.evalSuite(), projectId, name: input.name, datasetId: dataset.id, scorer: scorer as unknown as Prisma.InputJsonValue, judgeTargetId, items: count },
    });
  }

  listSuites(projectId: string) {
    return this.prisma.evalSuite.findMany({ where: { projectId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  async getSuite(projectId: string, ref: string, param = 'suite_id') {
    const s = await this.prisma.evalSuite.findFirst({ where: { projectId, OR: [{ id: ref }, { name: ref }] } });
    if (!s) throw notFound('eval suite', ref, param);
    return s;
  }

  async createRun(projectId: string, input: CreateRun): Promise<EvalRun> {
    const suite = await this.getSuite(projectId, input.suite);
    const targets = [];
    for (const [i, ref] of input.targets.entries()) targets.push(await this.getTarget(projectId, ref, `targets[${i}]`));
    if (new Set(targets.map((t) => t.id)).size !== targets.length) throw new DomainError('invalid_request', 'A target is listed twice', 'targets');
    let baselineTargetId: string | null = targets[0].id;
    if (input.baseline !== undefined) {
      const b = targets.find((t) => t.id === input.baseline || t.name === input.baseline);
      if (!b) throw new DomainError('invalid_request', `The baseline '${input.baseline}' must be one of the run's targets`, 'baseline');
      baselineTargetId = b.id;
    }
    const run = await this.prisma.evalRun.create({
      data: { id: newId.evalRun(), projectId, suiteId: suite.id, targetIds: targets.map((t) => t.id), baselineTargetId, total: suite.items * targets.length },
    });
    await this.queue.enqueue('run.execute', { runId: run.id });
    return run;
  }

  async getRun(projectId: string, id: string) {
    const run = await this.prisma.evalRun.findFirst({ where: { id, projectId }, include: { suite: true } });
    if (!run) throw notFound('eval run', id, 'run_id');
    return run;
  }

  listRuns(projectId: string, limit: number) {
    return this.prisma.evalRun.findMany({ where: { projectId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit, include: { suite: true } });
  }

  /** Per target: results recorded so far and how many were right. Read while the run goes: this is its progress. */
  async progress(run: EvalRun) {
    const rows = await this.prisma.evalResult.groupBy({ by: ['targetId', 'correct'], where: { runId: run.id }, _count: { _all: true } });
    const errors = await this.prisma.evalResult.groupBy({ by: ['targetId'], where: { runId: run.id, error: { not: null } }, _count: { _all: true } });
    const targets = await this.prisma.evalTarget.findMany({ where: { id: { in: run.targetIds }, projectId: run.projectId }, select: { id: true, name: true } });
    const names = new Map(targets.map((t) => [t.id, t.name]));
    const perTarget = run.targetIds.map((id) => {
      const mine = rows.filter((r) => r.targetId === id);
      return {
        target: names.get(id) ?? id,
        done: mine.reduce((n, r) => n + r._count._all, 0),
        correct: mine.find((r) => r.correct)?._count._all ?? 0,
        errors: errors.find((e) => e.targetId === id)?._count._all ?? 0,
      };
    });
    return { done: perTarget.reduce((n, t) => n + t.done, 0), total: run.total, targets: perTarget };
  }

  async cancelRun(projectId: string, id: string) {
    const run = await this.getRun(projectId, id);
    const changed = await this.prisma.evalRun.updateMany({ where: { id: run.id, status: { in: ['queued', 'running'] } }, data: { status: 'cancelled', finishedAt: new Date() } });
    if (changed.count === 0) throw new DomainError('invalid_state', `Run ${id} has already finished (${run.status})`, 'run_id');
    return this.getRun(projectId, id);
  }

  /** A page of results by item index (`limit` items, every target's row for each), oldest item first. */
  async results(projectId: string, runId: string, query: { target?: string; after?: number; limit: number }) {
    const run = await this.getRun(projectId, runId);
    const target = query.target ? await this.getTarget(projectId, query.target) : null;
    const from = query.after ?? -1;
    const rows = await this.prisma.evalResult.findMany({
      where: { runId: run.id, ...(target ? { targetId: target.id } : {}), itemIndex: { gt: from, lte: from + query.limit } },
      orderBy: [{ itemIndex: 'asc' }, { targetId: 'asc' }],
    });
    return { run, rows, hasMore: from + query.limit < run.suite.items - 1 };
  }
}
