import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { Quotas } from '../projects/quotas';
import { Config } from '../config/config';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { afterRow, pageQuery, PageQuery } from '../common/http/pagination';
import { PrismaService } from '../db/prisma.service';
import { Checkpoint, Dataset, FineTuningJob, JobEvent, Prisma } from '../generated/prisma/client';
import { CostEstimate, estimateCost } from './job-cost';
import { dpoHyperparametersInput, hyperparametersInput, loraInput, ResolvedHyperparameters, resolveHyperparameters } from './hyperparameters';
import { JobReadCache } from './job-read-cache';
import { eventRow, JobState } from './job-state';
import { TERMINAL } from './job-statuses';
import { BaseModel, ModelCatalog } from './model-catalog';
import { GpuSpec } from './placement/gpu-hosts.service';
import { TrainingQueue } from './training.queue';

const methodInput = z.discriminatedUnion('type', [
  z.object({ type: z.literal('supervised'), supervised: z.object({ hyperparameters: hyperparametersInput.optional() }).optional() }),
  z.object({ type: z.literal('dpo'), dpo: z.object({ hyperparameters: dpoHyperparametersInput.optional() }).optional() }),
]);

export const createJobBody = z.object({
  model: z.string().min(1),
  training_file: z.string().min(1),
  validation_file: z.string().min(1).nullish(),
  suffix: z.string().max(64).regex(/^[a-zA-Z0-9_-]*$/, 'letters, digits, - and _ only').nullish(),
  seed: z.number().int().min(0).max(2147483647).nullish(),
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, 'at most 16 keys')
    .nullish(),
  integrations: z.array(z.object({ type: z.string() }).passthrough()).nullish(),
  method: methodInput.optional(),
  /** Deprecated by OpenAI in favour of method.*.hyperparameters, still accepted. */
  hyperparameters: hyperparametersInput.optional(),
  /** loraplane extension: the LoRA settings. */
  lora: loraInput.optional(),
  /** loraplane extension: jobs waiting for GPUs start by priority (higher first), then in creation order. */
  priority: z.number().int().min(-100).max(100).optional(),
});
export type CreateJobBody = z.infer<typeof createJobBody>;

/** How often the live stream looks for new events. */
const STREAM_POLL_MS = 250;

export type LiveItem = { kind: 'event'; event: JobEvent } | { kind: 'done'; job: FineTuningJob };

/** Stripe-style idempotency keys: printable, at most 255 characters. */
export const idempotencyKey = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** A job's event list: OpenAI's pagination, and `type` to keep only messages (the timeline) or only metrics. */
export const eventsQuery = pageQuery.extend({ type: z.enum(['message', 'metrics']).optional() });
export type EventsQuery = z.infer<typeof eventsQuery>;

interface JobPlan {
  model: BaseModel;
  methodType: 'supervised' | 'dpo';
  training: Dataset;
  validation: Dataset | null;
  hp: ResolvedHyperparameters;
  estimate: CostEstimate;
}

@Injectable()
export class JobsService {
  private readonly logger = new Logger(JobsService.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly catalog: ModelCatalog,
    private readonly state: JobState,
    private readonly queue: TrainingQueue,
    private readonly config: Config,
    private readonly quotas: Quotas,
    private readonly reads: JobReadCache,
  ) {}

  /** Everything create checks and resolves, without creating: the dry-run estimate answers from this. */
  async plan(projectId: string, body: CreateJobBody): Promise<JobPlan> {
    const model = this.catalog.get(body.model);
    const methodType = body.method?.type ?? 'supervised';
    const training = await this.usableFile(projectId, body.training_file, 'training_file');
    const validation = body.validation_file ? await this.usableFile(projectId, body.validation_file, 'validation_file') : null;
    const wanted = methodType === 'dpo' ? 'dpo' : 'chat';
    for (const [file, param] of [[training, 'training_file'], [validation, 'validation_file']] as const) {
      if (file && file.format !== wanted) {
        throw new DomainError('invalid_file', `File ${file.id} holds ${file.format} examples; method '${methodType}' needs ${wanted} examples`, param);
      }
    }
    for (const [file, param] of [[training, 'training_file'], [validation, 'validation_file']] as const) {
      if (file) checkAnswerLength(model, file, param);
    }
    const methodHp = body.method?.type === 'dpo' ? body.method.dpo?.hyperparameters : body.method?.type === 'supervised' ? body.method.supervised?.hyperparameters : undefined;
    const examples = Number((training.stats as { examples?: number } | null)?.examples ?? 0);
    const hp = resolveHyperparameters(model, examples, { ...body.hyperparameters, ...methodHp }, body.lora ?? {}, methodType);
    const estimate = estimateCost(model, training, hp.n_epochs, model.gpus.count > 0 ? await this.cheapestGpuPrice(model) : null);
    return { model, methodType, training, validation, hp, estimate };
  }

  /** The price a GPU job will most likely pay: the cheapest enabled host that could ever hold it. */
  private async cheapestGpuPrice(model: BaseModel): Promise<number | null> {
    const hosts = await this.prisma.gpuHost.findMany({ where: { enabled: true }, orderBy: { usdPerGpuHour: 'asc' } });
    const fits = hosts.find((h) => (h.gpus as unknown as GpuSpec[]).filter((g) => g.memory_gb >= model.gpus.minMemoryGb).length >= model.gpus.count);
    return fits?.usdPerGpuHour ?? null;
  }

  /**
   * With an idempotency key, the same key in a project returns the job it created (a retried request never makes a
   * second job); the same key with another body is refused, since returning the first job would hide the change.
   */
  async create(projectId: string, body: CreateJobBody, key?: string, caller: { admin: boolean } = { admin: false }): Promise<FineTuningJob> {
    // Fair use: a project key moves its jobs only a little ahead of (or behind) others; the full range is the operator's.
    const maxPriority = caller.admin ? 100 : this.config.env.PROJECT_PRIORITY_MAX;
    if (body.priority !== undefined && Math.abs(body.priority) > maxPriority) {
      throw new DomainError('invalid_request', `'priority' must be between -${maxPriority} and ${maxPriority} for a project key (admin keys: -100..100)`, 'priority');
    }
    const hash = key ? createHash('sha256').update(stableJson(body)).digest('hex') : null;
    if (key) {
      const existing = await this.replay(projectId, key, hash!);
      if (existing) return existing;
    }
    const { model, methodType, training, validation, hp, estimate } = await this.plan(projectId, body);
    const id = newId.job();
    let job: FineTuningJob;
    try {
      job = await this.prisma.$transaction(async (tx) => {
        // Share-lock the files so a concurrent DELETE (which takes FOR UPDATE) either sees this job or wins first.
        // One id once: a validation file may be the training file itself.
        const fileIds = [...new Set([training.id, ...(validation ? [validation.id] : [])])];
        const live = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "Dataset" WHERE id = ANY(${fileIds}) AND "deletedAt" IS NULL FOR SHARE`;
        if (live.length !== fileIds.length) throw new DomainError('invalid_request', `No such file: '${training.id}'`, 'training_file');
        if (model.gpus.count > 0) {
          await this.quotas.lockProject(tx, projectId);
          await this.quotas.assertGpuJobs(projectId, this.catalog.all().filter((m) => m.gpus.count > 0).map((m) => m.id), tx);
        }
        const job = await tx.fineTuningJob.create({
          data: {
            id,
            projectId,
            model: model.id,
            trainingFileId: training.id,
            validationFileId: validation?.id,
            suffix: body.suffix ?? null,
            seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
            hyperparameters: hp as unknown as Prisma.InputJsonValue,
            // The record above is the one copy of the numbers; the method column keeps only its type.
            method: { type: methodType },
            metadata: body.metadata ?? undefined,
            integrations: (body.integrations ?? undefined) as Prisma.InputJsonValue | undefined,
            outputPrefix: `projects/${projectId}/jobs/${id}/`,
            priority: body.priority ?? 0,
            idempotencyKey: key ?? null,
            idempotencyHash: hash,
            costEstimate: estimate as unknown as Prisma.InputJsonValue,
          },
        });
        await tx.jobEvent.createMany({
          data: [
            eventRow(job, { message: `Created fine-tuning job: ${id}` }),
            eventRow(job, { message: `Validating training file: ${training.id}${validation ? ` and validation file: ${validation.id}` : ''}` }),
          ],
        });
        return job;
      });
    } catch (err) {
      // Two requests with one key raced: the unique (project, key) index let one in; answer with its job.
      if (key && (err as { code?: string }).code === 'P2002') {
        const existing = await this.replay(projectId, key, hash!);
        if (existing) return existing;
      }
      throw err;
    }
    // Postgres is the truth: if Redis is down now, the worker's start-up sweep enqueues it later.
    await this.queue.enqueue('job.validate', { jobId: id }).catch((err) => {
      this.logger.warn({ err, jobId: id }, 'could not enqueue validation; the sweep will retry');
    });
    return job;
  }

  private async replay(projectId: string, key: string, hash: string): Promise<FineTuningJob | null> {
    const existing = await this.prisma.fineTuningJob.findUnique({ where: { projectId_idempotencyKey: { projectId, idempotencyKey: key } } });
    if (existing && existing.idempotencyHash !== hash) {
      throw new DomainError('invalid_request', `Idempotency-Key '${key}' was already used for ${existing.id} with a different request body`, 'Idempotency-Key');
    }
    return existing;
  }

  /** From the read cache (at most JOB_READ_MAX_AGE_MS old); an unknown id is asked again every time. */
  async get(projectId: string, id: string): Promise<FineTuningJob> {
    return this.reads.get(`job:${projectId}:${id}`, async () => {
      const job = await this.prisma.fineTuningJob.findFirst({ where: { id, projectId } });
      if (!job) throw notFound('fine-tuning job', id, 'fine_tuning_job_id');
      return job;
    });
  }

  async list(projectId: string, page: PageQuery, metadata: Record<string, string>): Promise<FineTuningJob[]> {
    const where: Prisma.FineTuningJobWhereInput = {
      projectId,
      AND: Object.entries(metadata).map(([k, v]) => ({ metadata: { path: [k], equals: v } })),
    };
    if (page.after) {
      const cursor = await this.prisma.fineTuningJob.findFirst({ where: { id: page.after, projectId }, select: { id: true, createdAt: true } });
      if (!cursor) throw notFound('fine-tuning job', page.after, 'after');
      where.OR = afterRow(cursor).OR;
    }
    return this.prisma.fineTuningJob.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: page.limit + 1 });
  }

  /** Newest first, like OpenAI's; `after` is an event id. */
  async events(projectId: string, jobId: string, page: EventsQuery): Promise<JobEvent[]> {
    await this.get(projectId, jobId);
    const where: Prisma.JobEventWhereInput = { jobId, projectId, ...(page.type ? { type: page.type } : {}) };
    if (page.after) {
      const cursor = await this.prisma.jobEvent.findFirst({ where: { id: page.after, jobId }, select: { seq: true } });
      if (!cursor) throw notFound('event', page.after, 'after');
      where.seq = { lt: cursor.seq };
    }
    return this.prisma.jobEvent.findMany({ where, orderBy: { seq: 'desc' }, take: page.limit + 1 });
  }

  /**
   * Cancelled at once in Postgres (a run then leaves it so); the worker stops the workload (SIGTERM, then SIGKILL
   * after the grace period) and frees its GPUs only once the stop is confirmed (job-stopper.ts). The API process
   * touches no runtime: if the enqueue is lost, the worker's sweep finds a cancelled job still holding GPUs or a
   * workload and enqueues the stop again.
   */
  async cancel(projectId: string, id: string): Promise<FineTuningJob> {
    const job = await this.get(projectId, id);
    if (TERMINAL.includes(job.status)) {
      throw new DomainError('invalid_state', `Job ${id} has already ${job.status === 'succeeded' ? 'succeeded' : job.status}; it cannot be cancelled`, 'fine_tuning_job_id');
    }
    const cancelled = await this.state.transition(id, ['validating_files', 'queued', 'running'], 'cancelled', { message: 'The job was cancelled' }, { finishedAt: new Date() }, { keepGpus: true });
    if (!cancelled) return this.get(projectId, id); // it finished meanwhile: report what it is now
    await this.queue.enqueue('job.stop', { jobId: id }).catch((err) => this.logger.warn({ err, jobId: id }, 'could not enqueue the stop; the sweep will'));
    return cancelled;
  }

  /** OpenAI's checkpoints list: newest step first; `after` is a checkpoint id. */
  async checkpoints(projectId: string, jobId: string, page: PageQuery): Promise<{ job: FineTuningJob; rows: Checkpoint[] }> {
    const job = await this.get(projectId, jobId);
    const where: Prisma.CheckpointWhereInput = { jobId, projectId };
    if (page.after) {
      const cursor = await this.prisma.checkpoint.findFirst({ where: { id: page.after, jobId }, select: { attempt: true, step: true } });
      if (!cursor) throw notFound('checkpoint', page.after, 'after');
      where.OR = [{ attempt: { lt: cursor.attempt } }, { attempt: cursor.attempt, step: { lt: cursor.step } }];
    }
    const rows = await this.prisma.checkpoint.findMany({ where, orderBy: [{ attempt: 'desc' }, { step: 'desc' }], take: page.limit + 1 });
    return { job, rows };
  }

  async checkpointsWithSlug(projectId: string, jobId: string, page: PageQuery) {
    const { job, rows } = await this.checkpoints(projectId, jobId, page);
    const project = await this.prisma.project.findUniqueOrThrow({ where: { id: projectId }, select: { slug: true } });
    return { job, rows, slug: project.slug };
  }

  /**
   * The live stream: the job's events after `lastEventId` (all when absent), oldest first, as they are written,
   * then `done` once the job has ended and said all. A poll of Postgres works the same behind any api replica.
   */
  async *followEvents(projectId: string, jobId: string, lastEventId: string | undefined, signal: AbortSignal): AsyncGenerator<LiveItem> {
    let seq = await this.eventSeq(projectId, jobId, lastEventId);
    while (!signal.aborted) {
      const { job, events } = await this.eventsSince(projectId, jobId, seq);
      for (const event of events) yield { kind: 'event', event };
      if (events.length) seq = events[events.length - 1].seq;
      // The terminal event is written with the status, so a finished job with nothing newer has said all.
      else if (TERMINAL.includes(job.status)) {
        yield { kind: 'done', job };
        return;
      } else await sleep(STREAM_POLL_MS, undefined, { signal }).catch(() => undefined); // aborted: the loop ends
    }
  }

  /** For the live stream: events after a position, oldest first. */
  async eventsSince(projectId: string, jobId: string, afterSeq: bigint, limit = 500): Promise<{ job: FineTuningJob; events: JobEvent[] }> {
    const job = await this.get(projectId, jobId);
    const events = await this.prisma.jobEvent.findMany({ where: { jobId, projectId, seq: { gt: afterSeq } }, orderBy: { seq: 'asc' }, take: limit });
    return { job, events };
  }

  /** The seq of an event id (the SSE Last-Event-ID), 0 when unknown. */
  async eventSeq(projectId: string, jobId: string, eventId: string | undefined): Promise<bigint> {
    if (!eventId) return 0n;
    const row = await this.prisma.jobEvent.findFirst({ where: { id: eventId, jobId, projectId }, select: { seq: true } });
    return row?.seq ?? 0n;
  }

  private async usableFile(projectId: string, fileId: string, param: string): Promise<Dataset> {
    const file = await this.prisma.dataset.findFirst({ where: { id: fileId, projectId, deletedAt: null } });
    // Another project's file is "not found" too: its existence is not ours to reveal.
    if (!file) throw new DomainError('invalid_request', `No such file: '${fileId}'`, param);
    if (file.purpose !== 'fine-tune') throw new DomainError('invalid_file', `File ${fileId} has purpose '${file.purpose}', not 'fine-tune'`, param);
    if (file.status !== 'ready') throw new DomainError('invalid_file', `File ${fileId} is not a valid training file`, param);
    return file;
  }
}

/** JSON with sorted keys: the same body in another key order is the same request. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A model with an answer limit (tiny-lora generates at most 64 byte tokens) refuses a file whose longest answer is
 * over it now, naming the line, rather than when its trainer reads that line. Unknown for datasets validated before
 * the longest answer was recorded: their trainer still refuses the line.
 */
function checkAnswerLength(model: BaseModel, file: Dataset, param: string): void {
  const longest = (file.stats as { longest_answer?: { bytes: number; line: number } | null } | null)?.longest_answer;
  if (model.maxAnswerTokens === undefined || !longest || longest.bytes <= model.maxAnswerTokens) return;
  throw new DomainError(
    'invalid_file',
    `File ${file.id} line ${longest.line}: the assistant answer is ${longest.bytes} tokens (UTF-8 bytes), over ${model.id}'s limit of ${model.maxAnswerTokens}`,
    param,
  );
}
