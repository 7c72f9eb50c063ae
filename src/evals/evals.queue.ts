import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';
import { Config } from '../config/config';
import { ensureQueued, retryOptions } from '../queue/queue-worker';

export const EVALS_QUEUE = 'evals';

/** The typed task catalog of the evals queue (see training.queue.ts for the pattern). */
export const evalTasks = {
  /** Send every item without a result to every target of the run, score, record; then settle the run. */
  'run.execute': z.object({ runId: z.string() }),
} as const;
export type EvalTask = keyof typeof evalTasks;
export type EvalTaskPayload<T extends EvalTask> = z.infer<(typeof evalTasks)[T]>;

/** Infrastructure failures (Postgres, S3, no replica ready) are retried; a target's own errors are item results. */
const taskOptions = (config: Config): Record<EvalTask, JobsOptions> => ({
  'run.execute': retryOptions(config),
});

@Injectable()
export class EvalsQueue {
  private readonly options: Record<EvalTask, JobsOptions>;

  constructor(@InjectQueue(EVALS_QUEUE) private readonly queue: Queue, config: Config) {
    this.options = taskOptions(config);
  }

  async enqueue<T extends EvalTask>(task: T, payload: EvalTaskPayload<T>): Promise<void> {
    await this.queue.add(task, evalTasks[task].parse(payload), this.addOptions(task, payload));
  }

  /** For the sweep: adds the task when its entry is missing; true when added. */
  ensure<T extends EvalTask>(task: T, payload: EvalTaskPayload<T>): Promise<boolean> {
    return ensureQueued(this.queue, task, evalTasks[task].parse(payload), this.addOptions(task, payload));
  }

  // Deterministic id: a run is executed by one task at a time; re-enqueuing collapses into it.
  private addOptions<T extends EvalTask>(task: T, payload: EvalTaskPayload<T>): JobsOptions & { jobId: string } {
    return { ...this.options[task], jobId: `${task}.${payload.runId}`, removeOnComplete: true, removeOnFail: { count: 1000 } };
  }
}
