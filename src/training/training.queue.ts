import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';

export const TRAINING_QUEUE = 'training';

/**
 * The typed task catalog of the training queue: a zod schema per payload, options per task, and deterministic ids
 * so that enqueuing the same work twice collapses into one queue entry. The processor's handler table is typed
 * `Record<TrainingTask, ...>`, so a task without a handler does not compile.
 */
export const trainingTasks = {
  /** validating_files -> queued */
  'job.validate': z.object({ jobId: z.string() }),
  /** queued -> running -> succeeded | failed: place, start the container, follow it to the end. */
  'job.run': z.object({ jobId: z.string(), attempt: z.number().int().min(1) }),
} as const;
export type TrainingTask = keyof typeof trainingTasks;
export type TaskPayload<T extends TrainingTask> = z.infer<(typeof trainingTasks)[T]>;

const taskOptions: Record<TrainingTask, JobsOptions> = {
  'job.validate': { attempts: 5, backoff: { type: 'exponential', delay: 1000 } },
  // A run is long; BullMQ renews its lock while the worker lives and hands it to another worker if it dies.
  'job.run': { attempts: 5, backoff: { type: 'exponential', delay: 2000 } },
};

/** BullMQ rejects ':' in custom ids. */
export function taskId<T extends TrainingTask>(task: T, payload: TaskPayload<T>): string {
  const p = payload as { jobId: string; attempt?: number };
  return [task, p.jobId, p.attempt].filter((x) => x !== undefined).join('.');
}

@Injectable()
export class TrainingQueue {
  constructor(@InjectQueue(TRAINING_QUEUE) private readonly queue: Queue) {}

  async enqueue<T extends TrainingTask>(task: T, payload: TaskPayload<T>): Promise<void> {
    const data = trainingTasks[task].parse(payload);
    await this.queue.add(task, data, {
      ...taskOptions[task],
      jobId: taskId(task, payload),
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
    });
  }
}
