import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';

export const DATASETS_QUEUE = 'datasets';

/** The typed task catalog of the datasets queue (see training.queue.ts for the pattern). */
export const datasetTasks = {
  /** Token statistics of a file registered beyond the inline tokenizing budget. */
  'dataset.count_tokens': z.object({ datasetId: z.string() }),
} as const;
export type DatasetTask = keyof typeof datasetTasks;
export type DatasetTaskPayload<T extends DatasetTask> = z.infer<(typeof datasetTasks)[T]>;

const taskOptions: Record<DatasetTask, JobsOptions> = {
  'dataset.count_tokens': { attempts: 5, backoff: { type: 'exponential', delay: 2000 } },
};

@Injectable()
export class DatasetsQueue {
  constructor(@InjectQueue(DATASETS_QUEUE) private readonly queue: Queue) {}

  async enqueue<T extends DatasetTask>(task: T, payload: DatasetTaskPayload<T>): Promise<void> {
    const data = datasetTasks[task].parse(payload);
    // Deterministic id: enqueuing the same dataset twice collapses into one task.
    await this.queue.add(task, data, { ...taskOptions[task], jobId: `${task}.${data.datasetId}`, removeOnComplete: true, removeOnFail: { count: 1000 } });
  }
}
