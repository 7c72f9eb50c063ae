import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, WorkerOptions } from 'bullmq';
import { DomainError } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import { JobRunner, WaitingForGpus, WorkerShuttingDown } from './job-runner';
import { JobStopper } from './job-stopper';
import { TaskPayload, TRAINING_QUEUE, TrainingQueue, TrainingTask, trainingTasks } from './training.queue';

type Handlers = { [T in TrainingTask]: (payload: TaskPayload<T>) => Promise<void> };

/** How long a stopping worker waits for its runs to hand their tasks back before it closes anyway. */
const HANDOVER_MS = 3000;

/**
 * Worker for the training queue. Handlers are a typed table over the task catalog; a payload that fails its schema,
 * or a permanent domain error, is not retried.
 */
export class TrainingProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TrainingProcessor.name);
  private readonly handlers: Handlers;
  /** Aborted at shutdown: a run that is following a container lets go of it instead of waiting for it to end. */
  private readonly shutdown = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly runner: JobRunner, private readonly stopper: JobStopper, private readonly queue: TrainingQueue, private readonly prisma: PrismaService) {
    super();
    this.handlers = {
      'job.validate': (p) => this.runner.validate(p.jobId),
      'job.run': (p) => this.runner.run(p.jobId, p.attempt, this.shutdown.signal),
      'job.stop': (p) => this.stopper.stop(p.jobId),
    };
  }

  async process(job: Job, token?: string): Promise<void> {
    const work = this.handle(job, token);
    this.inFlight.add(work);
    try {
      await work;
    } finally {
      this.inFlight.delete(work);
    }
  }

  private async handle(job: Job, token?: string): Promise<void> {
    const name = job.name as TrainingTask;
    const schema = trainingTasks[name];
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    try {
      await (this.handlers[name] as (p: unknown) => Promise<void>)(payload.data);
    } catch (err) {
      // Not failures: the task goes back to the queue without spending an attempt. A run given back at shutdown
      // is due at once, so another worker (or this one, restarted) re-attaches without waiting for a lock to lapse.
      if (err instanceof WaitingForGpus || err instanceof WorkerShuttingDown) {
        await job.moveToDelayed(Date.now() + (err instanceof WaitingForGpus ? err.retryMs : 0), token);
        throw new DelayedError();
      }
      // Only an unavailable dependency is worth retrying; other domain errors are permanent.
      if (err instanceof DomainError && err.code !== 'service_unavailable') throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  /**
   * Runs before @nestjs/bullmq's own shutdown, which would wait for active tasks; a run can last hours. Runs let go
   * of their containers and hand their tasks back; what does not manage within HANDOVER_MS stays active in Redis
   * until its lock lapses (WORKER_LOCK_MS), and BullMQ's stalled check hands it to the next worker, which
   * re-attaches to the container by label. That second path is also what recovers a worker killed with -9.
   */
  async onModuleDestroy() {
    await this.worker.pause(true); // take no new task while the running ones hand theirs back
    this.shutdown.abort();
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, HANDOVER_MS).unref())]);
    await this.worker.close(true);
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error) {
    if (!job || err instanceof WorkerShuttingDown || err instanceof DelayedError || err.name === 'DelayedError') return;
    const spent = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError || err.name === 'UnrecoverableError';
    this.logger.warn({ task: job.name, jobId: job.data?.jobId, attempt: job.attemptsMade, err }, spent ? 'task failed for good' : 'task failed; will retry');
    if (typeof job.data?.jobId !== 'string') return;
    if (spent) await this.runner.giveUp(job.data.jobId, err);
    else await this.runner.retrying(job.data.jobId, err, job.attemptsMade, job.opts.attempts ?? 1);
  }

  /**
   * Postgres is the source of truth and Redis only carries work: at start, every unfinished job gets its task again.
   * Deterministic task ids make this a no-op for tasks still in the queue.
   */
  async onApplicationBootstrap() {
    const open = await this.prisma.fineTuningJob.findMany({
      where: { status: { in: ['validating_files', 'queued', 'running'] } },
      orderBy: [{ priority: 'desc' }, { createdAt: 'asc' }],
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

/**
 * The processor class bound to this process's worker settings. @nestjs/bullmq reads worker options from class
 * metadata, so the configured lock and stall timings are applied by decorating a subclass made here.
 */
export function trainingProcessorClass(opts: { lockDurationMs: number; stalledIntervalMs: number }): typeof TrainingProcessor {
  // maxStalledCount: a run whose worker died is stalled, not failed; the runner is idempotent and re-attaches, so
  // many stalls are fine. The stalled check is also how a dead worker's tasks come back.
  const workerOptions: Partial<WorkerOptions> = { concurrency: 16, maxStalledCount: 100, lockDuration: opts.lockDurationMs, stalledInterval: opts.stalledIntervalMs };
  @Processor(TRAINING_QUEUE, workerOptions)
  class ConfiguredTrainingProcessor extends TrainingProcessor {
    // Spelled out so the decorator emits this class's own constructor types for Nest's injector.
    constructor(runner: JobRunner, stopper: JobStopper, queue: TrainingQueue, prisma: PrismaService) {
      super(runner, stopper, queue, prisma);
    }
  }
  return ConfiguredTrainingProcessor;
}
