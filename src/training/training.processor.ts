import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { DomainError } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import { JobRunner, WorkerShuttingDown } from './job-runner';
import { TaskPayload, TRAINING_QUEUE, TrainingQueue, TrainingTask, trainingTasks } from './training.queue';

type Handlers = { [T in TrainingTask]: (payload: TaskPayload<T>) => Promise<void> };

/**
 * Worker for the training queue. Handlers are a typed table over the task catalog; a payload that fails its schema,
 * or a permanent domain error, is not retried.
 */
// maxStalledCount: a run whose worker died (or shut down) is stalled, not failed; the runner is idempotent and
// re-attaches, so many stalls are fine. The stalled check is also how a dead worker's tasks come back.
@Processor(TRAINING_QUEUE, { concurrency: 16, maxStalledCount: 100 })
export class TrainingProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TrainingProcessor.name);
  private readonly handlers: Handlers;
  /** Aborted at shutdown: a run that is following a container lets go of it instead of waiting for it to end. */
  private readonly shutdown = new AbortController();

  constructor(private readonly runner: JobRunner, private readonly queue: TrainingQueue, private readonly prisma: PrismaService) {
    super();
    this.handlers = {
      'job.validate': (p) => this.runner.validate(p.jobId),
      'job.run': (p) => this.runner.run(p.jobId, p.attempt, this.shutdown.signal),
    };
  }

  async process(job: Job): Promise<void> {
    const name = job.name as TrainingTask;
    const schema = trainingTasks[name];
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    try {
      await (this.handlers[name] as (p: unknown) => Promise<void>)(payload.data);
    } catch (err) {
      // Only an unavailable dependency is worth retrying; other domain errors are permanent.
      if (err instanceof DomainError && err.code !== 'service_unavailable') throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  /**
   * Runs before @nestjs/bullmq's own shutdown, which would wait for active tasks; a run can last hours. Force-close
   * instead: the task stays active in Redis until its lock lapses, then BullMQ's stalled-job check hands it to the
   * next worker, which re-attaches to the container by label.
   */
  async onModuleDestroy() {
    this.shutdown.abort();
    await this.worker.close(true);
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error) {
    if (!job || err instanceof WorkerShuttingDown) return;
    const spent = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError || err.name === 'UnrecoverableError';
    this.logger.warn({ task: job.name, jobId: job.data?.jobId, attempt: job.attemptsMade, err }, spent ? 'task failed for good' : 'task failed; will retry');
    if (spent && typeof job.data?.jobId === 'string') await this.runner.giveUp(job.data.jobId, err.message);
  }

  /**
   * Postgres is the source of truth and Redis only carries work: at start, every unfinished job gets its task again.
   * Deterministic task ids make this a no-op for tasks still in the queue.
   */
  async onApplicationBootstrap() {
    const open = await this.prisma.fineTuningJob.findMany({
      where: { status: { in: ['validating_files', 'queued', 'running'] } },
      select: { id: true, status: true, attempt: true },
    });
    for (const j of open) {
      if (j.status === 'validating_files') await this.queue.enqueue('job.validate', { jobId: j.id });
      else if (j.status === 'queued') await this.queue.enqueue('job.run', { jobId: j.id, attempt: j.attempt + 1 });
      else await this.queue.enqueue('job.run', { jobId: j.id, attempt: j.attempt });
    }
    if (open.length) this.logger.log(`re-enqueued ${open.length} unfinished job(s)`);
  }
}
