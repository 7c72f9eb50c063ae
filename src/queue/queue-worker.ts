import { OnWorkerEvent, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { DelayedError, Job, JobsOptions, Queue, UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';

/** A queue's typed task catalog: a zod schema per task name. */
export type TaskCatalog = Record<string, z.ZodType>;
export type TaskPayloadOf<C extends TaskCatalog, T extends keyof C> = z.infer<C[T]>;
/** A handler per task of the catalog: a task without one does not compile. */
export type TaskHandlers<C extends TaskCatalog> = { [T in keyof C]: (payload: TaskPayloadOf<C, T>) => Promise<void> };

/** How long a stopping worker waits for its tasks to hand their work back before it closes anyway. */
const HANDOVER_MS = 3000;

/**
 * Not a failure: the task goes back to the queue, due after `delayMs`, without spending an attempt (work that waits
 * for a resource, or a task handed back at shutdown).
 */
export class TaskDeferred extends Error {
  constructor(readonly delayMs: number, reason: string) {
    super(reason);
    this.name = 'TaskDeferred';
  }
}

/** The retry policy of tasks that BullMQ retries: attempts and exponential backoff from the config. */
export function retryOptions(config: Config): Pick<JobsOptions, 'attempts' | 'backoff'> {
  return { attempts: config.env.TASK_ATTEMPTS, backoff: { type: 'exponential', delay: config.env.TASK_RETRY_DELAY_MS } };
}

/**
 * Adds a task unless its deterministic id is waiting, delayed or active already; a finished entry still kept under
 * that id (a failed task is kept for inspection) is removed first, or the add would silently be a no-op. True when
 * a task was added: what a sweep counts.
 */
export async function ensureQueued(queue: Queue, name: string, data: unknown, opts: JobsOptions & { jobId: string }): Promise<boolean> {
  const existing = await queue.getJob(opts.jobId);
  if (existing) {
    const state = await existing.getState();
    if (state !== 'failed' && state !== 'completed' && state !== 'unknown') return false;
    await existing.remove().catch(() => undefined); // removed meanwhile by its own removeOn* policy: the add below decides
  }
  const added = await queue.add(name, data, opts);
  return Boolean(added);
}

/**
 * The one base of every queue processor:
 * - typed payloads: the task name must be in the catalog and its payload must pass the schema, else the task is
 *   failed for good (a malformed task never gets better by retrying);
 * - permanent vs retryable: a DomainError other than `service_unavailable` (the user's input, a missing row) is
 *   permanent; `service_unavailable` and unknown errors are retried per the task's options (retryOptions);
 * - TaskDeferred puts the task back without spending an attempt;
 * - graceful handover: at shutdown the worker aborts `shutdown` so long tasks let go, takes no new task, waits up to
 *   HANDOVER_MS for the graceful close, then forces it; what is still active is left to its lock lapsing;
 * - a periodic sweep (optional): at start and every `sweepIntervalMs`, re-enqueue from Postgres what needs a queue
 *   entry, since Postgres is the source of truth and Redis only carries work.
 */
export abstract class QueueWorker<C extends TaskCatalog> extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  protected readonly logger: Logger;
  /** Aborted at shutdown: a long task lets go of its work instead of waiting for it to end. */
  protected readonly shutdown = new AbortController();
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;

  protected constructor(name: string, private readonly catalog: C) {
    super();
    this.logger = new Logger(name);
  }

  protected abstract readonly handlers: TaskHandlers<C>;

  /** Re-enqueues what Postgres says needs a queue entry; returns how many it added. None by default. */
  protected async sweep(): Promise<number> {
    return 0;
  }

  /** How often `sweep` runs after the one at start; null: at start only. */
  protected sweepIntervalMs(): number | null {
    return null;
  }

  /** A task failed and will be retried. */
  protected async onRetrying(_job: Job, _err: Error): Promise<void> {}

  /** A task failed for good (retries spent, or a permanent error): its work must not stay pending forever. */
  protected async onGaveUp(_job: Job, _err: Error): Promise<void> {}

  async process(job: Job, token?: string): Promise<void> {
    const name = job.name as keyof C & string;
    const schema = Object.hasOwn(this.catalog, name) ? this.catalog[name] : undefined;
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    try {
      // A stopping worker can still receive a task its last fetch returned: give it straight back.
      if (this.shutdown.signal.aborted) throw new TaskDeferred(0, 'the worker is shutting down');
      await this.handlers[name](payload.data as TaskPayloadOf<C, typeof name>);
    } catch (err) {
      if (err instanceof TaskDeferred) {
        // Due at once at shutdown, so another worker (or this one, restarted) takes over without waiting for a lock.
        await job.moveToDelayed(Date.now() + err.delayMs, token);
        throw new DelayedError();
      }
      // The cause keeps our own words reachable for what the user is shown (userFacingMessage).
      if (err instanceof DomainError && err.code !== 'service_unavailable') throw Object.assign(new UnrecoverableError(err.message), { cause: err });
      throw err;
    }
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error) {
    if (!job || err instanceof DelayedError || err.name === 'DelayedError') return;
    const spent = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError || err.name === 'UnrecoverableError';
    this.logger.warn({ task: job.name, taskId: job.id, attempt: job.attemptsMade, err }, spent ? 'task failed for good' : 'task failed; will retry');
    try {
      if (spent) await this.onGaveUp(job, err);
      else await this.onRetrying(job, err);
    } catch (hookErr) {
      this.logger.error({ err: hookErr, task: job.name, taskId: job.id }, 'could not record a failed task; the sweep will look again');
    }
  }

  async onApplicationBootstrap() {
    await this.runSweep();
    const every = this.sweepIntervalMs();
    if (every === null) return;
    this.sweepTimer = setInterval(() => void this.runSweep(), every);
    this.sweepTimer.unref();
  }

  private runSweep(): Promise<void> {
    // One sweep at a time: a slow one is not stacked on.
    this.sweeping ??= this.sweep()
      .then((n) => {
        if (n > 0) this.logger.log(`sweep re-enqueued ${n} task(s) whose queue entry was missing`);
      })
      .catch((err: unknown) => this.logger.warn({ err }, 'sweep failed; will try again'))
      .finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  /**
   * Runs before @nestjs/bullmq's own shutdown, which would wait for active tasks (a training run lasts hours). Long
   * tasks are aborted first, so they record what they have and give their tasks back (TaskDeferred: delayed, due at
   * once); the graceful close then waits for that and fetches nothing more. A task that does not let go within
   * HANDOVER_MS is left to its lock lapsing (WORKER_LOCK_MS) and the stalled check, which is also what recovers a
   * worker killed with -9.
   */
  async onModuleDestroy() {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.shutdown.abort();
    const closed = this.worker.close();
    const inTime = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), HANDOVER_MS).unref())]);
    if (!inTime) await this.worker.close(true);
    await this.sweeping;
  }
}
