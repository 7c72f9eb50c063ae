import { Processor } from '@nestjs/bullmq';
import { Job, WorkerOptions } from 'bullmq';
import { Config } from '../config/config';
import { userFacingMessage } from '../common/user-facing-error';
import { PrismaService } from '../db/prisma.service';
import { QueueWorker, TaskDeferred, TaskHandlers } from '../queue/queue-worker';
import { EvalRunner, RunInterrupted } from './eval-runner';
import { EVALS_QUEUE, EvalsQueue, evalTasks } from './evals.queue';

/**
 * Worker side of evals (worker role only), on the shared QueueWorker base. A stopping worker aborts its calls,
 * writes what it has and gives the task back to the queue, due at once; the next worker resumes the run from its
 * result rows.
 */
export class EvalsProcessor extends QueueWorker<typeof evalTasks> {
  protected readonly handlers: TaskHandlers<typeof evalTasks> = {
    'run.execute': async (p) => {
      try {
        await this.runner.execute(p.runId, this.shutdown.signal);
      } catch (err) {
        if (err instanceof RunInterrupted) throw new TaskDeferred(0, err.message);
        throw err;
      }
    },
  };

  constructor(private readonly runner: EvalRunner, private readonly queue: EvalsQueue, private readonly prisma: PrismaService, private readonly config: Config) {
    super(EvalsProcessor.name, evalTasks);
  }

  protected override async onGaveUp(job: Job, err: Error): Promise<void> {
    // The run's error is shown to the tenant: our own DomainError words, never a driver's or ORM's text.
    if (typeof job.data?.runId === 'string') await this.runner.giveUp(job.data.runId, userFacingMessage(err, this.logger, { runId: job.data.runId }));
  }

  protected override sweepIntervalMs(): number {
    return this.config.env.QUEUE_SWEEP_INTERVAL_MS;
  }

  /** Redis may have lost the queue: every unfinished run in Postgres whose task is missing gets it again. */
  protected override async sweep(): Promise<number> {
    const open = await this.prisma.evalRun.findMany({ where: { status: { in: ['queued', 'running'] } }, orderBy: { createdAt: 'asc' }, select: { id: true } });
    let added = 0;
    for (const r of open) added += Number(await this.queue.ensure('run.execute', { runId: r.id }));
    return added;
  }
}

/**
 * The processor bound to this process's worker timings (see trainingProcessorClass): a run whose worker died is
 * stalled, not failed; the runner resumes from its result rows, so many stalls are fine.
 */
export function evalsProcessorClass(opts: { lockDurationMs: number; stalledIntervalMs: number }): typeof EvalsProcessor {
  const workerOptions: Partial<WorkerOptions> = { concurrency: 4, maxStalledCount: 100, lockDuration: opts.lockDurationMs, stalledInterval: opts.stalledIntervalMs };
  @Processor(EVALS_QUEUE, workerOptions)
  class ConfiguredEvalsProcessor extends EvalsProcessor {
    constructor(runner: EvalRunner, queue: EvalsQueue, prisma: PrismaService, config: Config) {
      super(runner, queue, prisma, config);
    }
  }
  return ConfiguredEvalsProcessor;
}
