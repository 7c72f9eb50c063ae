import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';
import { Config } from '../config/config';

export const EVALS_QUEUE = 'evals';

/** The typed task catalog of the evals queue (see training.queue.ts for the pattern). */
export const evalTasks = {
  /** Send every item without a result to every target of the run, score, record; then settle the run. */
  'run.execute': z.object({ runId: z.string() }),
} as const;
export type EvalTask = keyof typeof evalTasks;
export type EvalTaskPayload<T extends EvalTask> = z.infer<(typeof evalTasks)[T]>;

/** Infrastructure failures (Postgres, S3, no replica ready) are retried; a target's own errors are item results. */
const taskOptions = (retryMs: number): Record<EvalTask, JobsOptions> => ({
  'run.execute': { attempts: 5, backoff: { type: 'exponential', delay: retryMs } },
});

@Injectable()
export class EvalsQueue {
  private readonly options: Record<EvalTask, JobsOptions>;

  constructor(@InjectQueue(EVALS_QUEUE) private readonly queue: Queue, config: Config) {
    this.options = taskOptions(config.env.TASK_RETRY_DELAY_MS);
  }

  async enqueue<T extends EvalTask>(task: T, payload: EvalTaskPayload<T>): Promise<void> {
    const data = evalTasks[task].parse(payload);
    // Deterministic id: a run is executed by one task at a time; re-enqueuing at start collapses into it.
    await this.queue.add(task, data, { ...this.options[task], jobId: `${task}.${data.runId}`, removeOnComplete: true, removeOnFail: { count: 1000 } });
  }
}
