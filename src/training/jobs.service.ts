import { Injectable, Logger } from '@nestjs/common';
import { z } from 'zod';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { PageQuery } from '../common/http/pagination';
import { PrismaService } from '../db/prisma.service';
import { Dataset, FineTuningJob, JobEvent, Prisma } from '../generated/prisma/client';
import { hyperparametersInput, loraInput, resolveHyperparameters } from './hyperparameters';
import { eventRow, JobState, TERMINAL } from './job-state';
import { ModelCatalog } from './model-catalog';
import { DockerRuntime } from './runtime/docker-runtime';
import { TrainingQueue } from './training.queue';

const methodInput = z.discriminatedUnion('type', [
  z.object({ type: z.literal('supervised'), supervised: z.object({ hyperparameters: hyperparametersInput.optional() }).optional() }),
  z.object({ type: z.literal('dpo'), dpo: z.object({ hyperparameters: hyperparametersInput.optional() }).optional() }),
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
});
export type CreateJobBody = z.infer<typeof createJobBody>;

@Injectable()
export class JobsService {
  private readonly logger = new Logger(JobsService.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly catalog: ModelCatalog,
    private readonly state: JobState,
    private readonly queue: TrainingQueue,
    private readonly runtime: DockerRuntime,
  ) {}

  async create(projectId: string, body: CreateJobBody): Promise<FineTuningJob> {
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
    const methodHp = body.method?.type === 'dpo' ? body.method.dpo?.hyperparameters : body.method?.type === 'supervised' ? body.method.supervised?.hyperparameters : undefined;
    const examples = Number((training.stats as { examples?: number } | null)?.examples ?? 0);
    const hp = resolveHyperparameters(model, examples, { ...body.hyperparameters, ...methodHp }, body.lora ?? {}, methodType);
    const id = newId.job();
    const { learning_rate: _lr, lora: _lora, ...openaiHp } = hp;
    const job = await this.prisma.$transaction(async (tx) => {
      // Share-lock the files so a concurrent DELETE (which takes FOR UPDATE) either sees this job or wins first.
      const fileIds = [training.id, ...(validation ? [validation.id] : [])];
      const live = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "Dataset" WHERE id = ANY(${fileIds}) AND "deletedAt" IS NULL FOR SHARE`;
      if (live.length !== fileIds.length) throw new DomainError('invalid_request', `No such file: '${training.id}'`, 'training_file');
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
          method: { type: methodType, [methodType]: { hyperparameters: openaiHp } },
          metadata: body.metadata ?? undefined,
          integrations: (body.integrations ?? undefined) as Prisma.InputJsonValue | undefined,
          outputPrefix: `projects/${projectId}/jobs/${id}/`,
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
    // Postgres is the truth: if Redis is down now, the worker's start-up sweep enqueues it later.
    await this.queue.enqueue('job.validate', { jobId: id }).catch((err) => {
      this.logger.warn({ err, jobId: id }, 'could not enqueue validation; the sweep will retry');
    });
    return job;
  }

  async get(projectId: string, id: string): Promise<FineTuningJob> {
    const job = await this.prisma.fineTuningJob.findFirst({ where: { id, projectId } });
    if (!job) throw notFound('fine-tuning job', id, 'fine_tuning_job_id');
    return job;
  }

  async list(projectId: string, page: PageQuery, metadata: Record<string, string>): Promise<FineTuningJob[]> {
    const where: Prisma.FineTuningJobWhereInput = {
      projectId,
      AND: Object.entries(metadata).map(([k, v]) => ({ metadata: { path: [k], equals: v } })),
    };
    if (page.after) {
      const cursor = await this.prisma.fineTuningJob.findFirst({ where: { id: page.after, projectId }, select: { id: true, createdAt: true } });
      if (!cursor) throw notFound('fine-tuning job', page.after, 'after');
      where.OR = [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }];
    }
    return this.prisma.fineTuningJob.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: page.limit + 1 });
  }

  /** Newest first, like OpenAI's; `after` is an event id. */
  async events(projectId: string, jobId: string, page: PageQuery): Promise<JobEvent[]> {
    await this.get(projectId, jobId);
    const where: Prisma.JobEventWhereInput = { jobId, projectId };
    if (page.after) {
      const cursor = await this.prisma.jobEvent.findFirst({ where: { id: page.after, jobId }, select: { seq: true } });
      if (!cursor) throw notFound('event', page.after, 'after');
      where.seq = { lt: cursor.seq };
    }
    return this.prisma.jobEvent.findMany({ where, orderBy: { seq: 'desc' }, take: page.limit + 1 });
  }

  async cancel(projectId: string, id: string): Promise<FineTuningJob> {
    const job = await this.get(projectId, id);
    if (TERMINAL.includes(job.status)) {
      throw new DomainError('invalid_state', `Job ${id} has already ${job.status === 'succeeded' ? 'succeeded' : job.status}; it cannot be cancelled`, 'fine_tuning_job_id');
    }
    const cancelled = await this.state.transition(id, ['validating_files', 'queued', 'running'], 'cancelled', { message: 'The job was cancelled' }, { finishedAt: new Date() });
    if (!cancelled) return this.get(projectId, id); // it finished meanwhile: report what it is now
    if (job.containerId) {
      // The run handler sees the container end and, finding the job cancelled, leaves it so.
      await this.runtime.stop(job.containerId).catch((err) => this.logger.warn({ err, jobId: id }, 'could not stop the container'));
    }
    return cancelled;
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
