import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, WorkerOptions } from 'bullmq';
import { DomainError } from '../common/domain-error';
import { userFacingMessage } from '../common/user-facing-error';
import { PrismaService } from '../db/prisma.service';
import { EvalRunner, RunInterrupted } from './eval-runner';
import { EVALS_QUEUE, EvalsQueue, EvalTask, EvalTaskPayload, evalTasks } from './evals.queue';

type Handlers = { [T in EvalTask]: (payload: EvalTaskPayload<T>) => Promise<void> };

/** How long a stopping worker waits for its runs to flush their results and hand their tasks back. */
const HANDOVER_MS = 3000;

/**
 * Worker side of evals (worker role only). A stopping worker aborts its calls, writes what it has and gives the task
 * back to the queue, due at once; the next worker resumes the run from its result rows.
 */
export class EvalsProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(EvalsProcessor.name);
  private readonly handlers: Handlers;
  private readonly shutdown = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly runner: EvalRunner, private readonly queue: EvalsQueue, private readonly prisma: PrismaService) {
    super();
    this.handlers = { 'run.execute': (p) => this.runner.execute(p.runId, this.shutdown.signal) };
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
    const name = job.name as EvalTask;
    const schema = evalTasks[name];
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    try {
      // A stopping worker can still receive a task its last fetch returned: give it straight back.
      if (this.shutdown.signal.aborted) throw new RunInterrupted();
      await this.handlers[name](payload.data);
    } catch (err) {
      if (err instanceof RunInterrupted) {
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      // The cause keeps our own words reachable for the run's error (userFacingMessage).
      if (err instanceof DomainError && err.code !== 'service_unavailable') throw Object.assign(new UnrecoverableError(err.message), { cause: err });
      throw err;
    }
  }

  /**
   * Runs before @nestjs/bullmq's own shutdown. Runs are aborted first, so they record what they have and give their
   * tasks back (delayed, due at once); the graceful close then waits for that and fetches nothing more. A run that
   * does not let go within HANDOVER_MS is left to its lock lapsing (WORKER_LOCK_MS) and the stalled check.
   */
  async onModuleDestroy() {
    this.shutdown.abort();
    const closed = this.worker.close();
    const inTime = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), HANDOVER_MS).unref())]);
    if (!inTime) await this.worker.close(true);
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error) {
    if (!job || err instanceof DelayedError || err.name === 'DelayedError') return;
    const spent = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError || err.name === 'UnrecoverableError';
    this.logger.warn({ task: job.name, runId: job.data?.runId, attempt: job.attemptsMade, err }, spent ? 'eval task failed for good' : 'eval task failed; will retry');
    if (spent && typeof job.data?.runId === 'string') {
      // The run's error is shown to the tenant: never a driver's or ORM's text.
      await this.runner.giveUp(job.data.runId, userFacingMessage(err, this.logger, { runId: job.data.runId }));
    }
  }

  /** Redis may have lost the queue: every unfinished run in Postgres gets its task again (ids collapse duplicates). */
  async onApplicationBootstrap() {
    const open = await this.prisma.evalRun.findMany({ where: { status: { in: ['queued', 'running'] } }, orderBy: { createdAt: 'asc' }, select: { id: true } });
    for (const r of open) await this.queue.enqueue('run.execute', { runId: r.id });
    if (open.length) this.logger.log(`re-enqueued ${open.length} unfinished eval run(s)`);
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
    constructor(runner: EvalRunner, queue: EvalsQueue, prisma: PrismaService) {
      super(runner, queue, prisma);
    }
  }
  return ConfiguredEvalsProcessor;
}
