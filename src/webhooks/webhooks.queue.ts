import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { z } from 'zod';
import { PrismaService } from '../db/prisma.service';

export const WEBHOOKS_QUEUE = 'webhooks';

/**
 * The typed task catalog of the webhooks queue (see training.queue.ts for the pattern). Retries are not BullMQ's:
 * each delivery's schedule lives in Postgres (attempts, nextAttemptAt), and a task is one attempt, named by the
 * delivery and the attempt number so that enqueuing it twice (sweep, nudge, another worker) collapses into one.
 */
export const webhookTasks = {
  /** Make attempt number `attempt` of a delivery, if it is still due. */
  'delivery.attempt': z.object({ deliveryId: z.string(), attempt: z.number().int().min(1) }),
} as const;
export type WebhookTask = keyof typeof webhookTasks;
export type WebhookTaskPayload<T extends WebhookTask> = z.infer<(typeof webhookTasks)[T]>;

/** One sweep enqueues at most this many; the next sweep takes the rest. */
const SWEEP_BATCH = 500;

@Injectable()
export class WebhookQueue {
  constructor(@InjectQueue(WEBHOOKS_QUEUE) private readonly queue: Queue, private readonly prisma: PrismaService) {}

  async attempt(payload: WebhookTaskPayload<'delivery.attempt'>, delayMs = 0): Promise<void> {
    const data = webhookTasks['delivery.attempt'].parse(payload);
    await this.queue.add('delivery.attempt', data, {
      jobId: `delivery.attempt.${data.deliveryId}.${data.attempt}`,
      delay: Math.max(0, delayMs),
      attempts: 1,
      removeOnComplete: true,
      removeOnFail: true,
    });
  }

  /**
   * Enqueues every pending delivery that is due, from Postgres (so Redis losing its data loses no delivery).
   * `freshOnly`: just those never tried, which is what a commit that recorded new events has added.
   */
  async enqueueDue(opts: { freshOnly?: boolean } = {}): Promise<number> {
    const due = await this.prisma.webhookDelivery.findMany({
      where: { status: 'pending', nextAttemptAt: { lte: new Date() }, ...(opts.freshOnly ? { attempts: 0 } : {}) },
      orderBy: { nextAttemptAt: 'asc' },
      select: { id: true, attempts: true },
      take: SWEEP_BATCH,
    });
    for (const d of due) await this.attempt({ deliveryId: d.id, attempt: d.attempts + 1 });
    return due.length;
  }
}
