import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';

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
  /** cancelled: stop the workload, then free its GPUs (job-stopper.ts). */
  'job.stop': z.object({ jobId: z.string() }),
} as const;
export type TrainingTask = keyof typeof trainingTasks;
export type TaskPayload<T extends TrainingTask> = z.infer<(typeof trainingTasks)[T]>;

/**
 * Retry policy: an infrastructure failure (engine, S3, database unreachable) is retried with exponential backoff,
 * 5 attempts in all; a user error is never retried (the processor makes it unrecoverable, or the job fails itself).
 */
const taskOptions = (retryMs: number): Record<TrainingTask, JobsOptions> => ({
  'job.validate': { attempts: 5, backoff: { type: 'exponential', delay: retryMs } },
  // A run is long; BullMQ renews its lock while the worker lives and hands it to another worker if it dies.
  'job.run': { attempts: 5, backoff: { type: 'exponential', delay: retryMs } },
  'job.stop': { attempts: 5, backoff: { type: 'exponential', delay: retryMs } },
});

/** BullMQ rejects ':' in custom ids. */
export function taskId<T extends TrainingTask>(task: T, payload: TaskPayload<T>): string {
  const p = payload as { jobId: string; attempt?: number };
  return [task, p.jobId, p.attempt].filter((x) => x !== undefined).join('.');
}

@Injectable()
export class TrainingQueue {
  private readonly options: Record<TrainingTask, JobsOptions>;

  constructor(@InjectQueue(TRAINING_QUEUE) private readonly queue: Queue, private readonly prisma: PrismaService, config: Config) {
    this.options = taskOptions(config.env.TASK_RETRY_DELAY_MS);
  }

  /**
   * GPUs were freed: the queued jobs' run tasks (parked as delayed while they wait) are due now, in priority then
   * FIFO order; placement decides which of them fit.
   */
  async wakeGpuWaiters(): Promise<void> {
    const waiting = await this.prisma.fineTuningJob.findMany({
      where: { status: 'queued' },
      orderBy: [{ priority: 'desc' }, { createdAt: 'asc' }],
      select: { id: true, attempt: true },
      take: 100,
    });
    for (const j of waiting) {
      const task = await this.queue.getJob(taskId('job.run', { jobId: j.id, attempt: j.attempt + 1 }));
      if (task && (await task.isDelayed())) await task.promote().catch(() => undefined); // promoted meanwhile by another worker
    }
  }

  /** Whether the run task of this attempt is being worked on right now (its workload may be starting). */
  async isRunActive(jobId: string, attempt: number): Promise<boolean> {
    const task = await this.queue.getJob(taskId('job.run', { jobId, attempt }));
    return Boolean(task && (await task.isActive()));
  }

  async enqueue<T extends TrainingTask>(task: T, payload: TaskPayload<T>): Promise<void> {
    const data = trainingTasks[task].parse(payload);
    await this.queue.add(task, data, {
      ...this.options[task],
      jobId: taskId(task, payload),
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
    });
  }
}
