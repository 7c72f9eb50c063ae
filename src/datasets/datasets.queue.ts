import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';
import { Config } from '../config/config';
import { ensureQueued, retryOptions } from '../queue/queue-worker';

export const DATASETS_QUEUE = 'datasets';

/** The typed task catalog of the datasets queue (see training.queue.ts for the pattern). */
export const datasetTasks = {
  /** Token statistics of a file registered beyond the inline tokenizing budget. */
  'dataset.count_tokens': z.object({ datasetId: z.string() }),
} as const;
export type DatasetTask = keyof typeof datasetTasks;
export type DatasetTaskPayload<T extends DatasetTask> = z.infer<(typeof datasetTasks)[T]>;

@Injectable()
export class DatasetsQueue {
  private readonly options: Record<DatasetTask, JobsOptions>;

  constructor(@InjectQueue(DATASETS_QUEUE) private readonly queue: Queue, config: Config) {
    this.options = { 'dataset.count_tokens': retryOptions(config) };
  }

  async enqueue<T extends DatasetTask>(task: T, payload: DatasetTaskPayload<T>): Promise<void> {
    await this.queue.add(task, datasetTasks[task].parse(payload), this.addOptions(task, payload));
  }

  /** For the sweep: adds the task when its entry is missing; true when added. */
  ensure<T extends DatasetTask>(task: T, payload: DatasetTaskPayload<T>): Promise<boolean> {
    return ensureQueued(this.queue, task, datasetTasks[task].parse(payload), this.addOptions(task, payload));
  }

  // Deterministic id: enqueuing the same dataset twice collapses into one task.
  private addOptions<T extends DatasetTask>(task: T, payload: DatasetTaskPayload<T>): JobsOptions & { jobId: string } {
    return { ...this.options[task], jobId: `${task}.${payload.datasetId}`, removeOnComplete: true, removeOnFail: { count: 1000 } };
  }
}
