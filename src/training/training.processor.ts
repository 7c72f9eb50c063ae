import { Processor } from '@nestjs/bullmq';
import { Job, WorkerOptions } from 'bullmq';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { QueueWorker, TaskHandlers } from '../queue/queue-worker';
import { JobRunner } from './job-runner';
import { JobStopper } from './job-stopper';
import { TRAINING_QUEUE, TrainingQueue, trainingTasks } from './training.queue';

/**
 * Worker for the training queue (on the shared QueueWorker base). A run that is following a workload lets go of it
 * at shutdown; what does not hand back in time stays active in Redis until its lock lapses (WORKER_LOCK_MS), and
 * BullMQ's stalled check hands it to the next worker, which re-attaches to the workload by label. That second path
 * is also what recovers a worker killed with -9.
 */
export class TrainingProcessor extends QueueWorker<typeof trainingTasks> {
  protected readonly handlers: TaskHandlers<typeof trainingTasks> = {
    'job.validate': (p) => this.runner.validate(p.jobId),
    'job.run': (p) => this.runner.run(p.jobId, p.attempt, this.shutdown.signal),
    'job.stop': (p) => this.stopper.stop(p.jobId),
  };

  constructor(
    private readonly runner: JobRunner,
    private readonly stopper: JobStopper,
    private readonly queue: TrainingQueue,
    private readonly prisma: PrismaService,
    private readonly config: Config,
  ) {
    super(TrainingProcessor.name, trainingTasks);
  }

  protected override async onRetrying(job: Job, err: Error): Promise<void> {
    if (typeof job.data?.jobId === 'string') await this.runner.retrying(job.data.jobId, err, job.attemptsMade, job.opts.attempts ?? 1);
  }

  protected override async onGaveUp(job: Job, err: Error): Promise<void> {
    // A stop that ran out of retries keeps the GPUs; the sweep enqueues it again.
    if (job.name !== 'job.stop' && typeof job.data?.jobId === 'string') await this.runner.giveUp(job.data.jobId, err);
  }

  protected override sweepIntervalMs(): number {
    return this.config.env.QUEUE_SWEEP_INTERVAL_MS;
  }

  /**
   * Postgres is the source of truth and Redis only carries work: every unfinished job, and every cancelled job that
   * still holds GPUs or a workload, gets its task again when its queue entry is missing.
   */
  protected override async sweep(): Promise<number> {
    const open = await this.prisma.fineTuningJob.findMany({
      where: {
        OR: [
          { status: { in: ['validating_files', 'queued', 'running'] } },
          { status: 'cancelled', OR: [{ workloadId: { not: null } }, { allocations: { some: {} } }] },
        ],
      },
      orderBy: [{ priority: 'desc' }, { createdAt: 'asc' }],
      select: { id: true, status: true, attempt: true },
    });
    let added = 0;
    for (const j of open) {
      if (j.status === 'validating_files') added += Number(await this.queue.ensure('job.validate', { jobId: j.id }));
      else if (j.status === 'queued') added += Number(await this.queue.ensure('job.run', { jobId: j.id, attempt: j.attempt + 1 }));
      else if (j.status === 'running') added += Number(await this.queue.ensure('job.run', { jobId: j.id, attempt: j.attempt }));
      else added += Number(await this.queue.ensure('job.stop', { jobId: j.id }));
    }
    return added;
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
    constructor(runner: JobRunner, stopper: JobStopper, queue: TrainingQueue, prisma: PrismaService, config: Config) {
      super(runner, stopper, queue, prisma, config);
    }
  }
  return ConfiguredTrainingProcessor;
}
