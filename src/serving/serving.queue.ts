import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { z } from 'zod';

export const SERVING_QUEUE = 'serving';

/** The typed task catalog of the serving queue (see training.queue.ts for the pattern). */
export const servingTasks = {
  /** Make every replica of a pool match its desired state, and record what each one reports. */
  'pool.reconcile': z.object({ poolId: z.string() }),
} as const;
export type ServingTask = keyof typeof servingTasks;
export type ServingTaskPayload<T extends ServingTask> = z.infer<(typeof servingTasks)[T]>;

@Injectable()
export class ServingQueue {
  constructor(@InjectQueue(SERVING_QUEUE) private readonly queue: Queue) {}

  /**
   * Deterministic id: while a pass for the pool is waiting or running, asking again collapses into it. A change made
   * during a running pass is not lost: the pass compares the pool's revision at its end and goes again.
   */
  async reconcileSoon(poolId: string): Promise<void> {
    const data = servingTasks['pool.reconcile'].parse({ poolId });
    await this.queue.add('pool.reconcile', data, { jobId: `pool.reconcile.${poolId}`, removeOnComplete: true, removeOnFail: true, attempts: 1 });
  }
}
