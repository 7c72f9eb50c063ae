import { Processor } from '@nestjs/bullmq';
import { Config } from '../config/config';
import { QueueWorker, TaskHandlers } from '../queue/queue-worker';
import { WebhookDeliverer } from './webhook-deliverer';
import { WEBHOOKS_QUEUE, WebhookQueue, webhookTasks } from './webhooks.queue';

/**
 * Worker side of webhooks: makes delivery attempts (many at once; a slow receiver holds one slot for at most
 * WEBHOOK_TIMEOUT_MS) and, at start and every WEBHOOK_SWEEP_INTERVAL_MS, enqueues every due delivery found in
 * Postgres: that is how deliveries survive Redis losing its data, a worker dying mid-attempt, or a nudge that failed.
 * A task is one attempt; the retry schedule lives in Postgres, not in BullMQ.
 */
@Processor(WEBHOOKS_QUEUE, { concurrency: 16 })
export class WebhooksProcessor extends QueueWorker<typeof webhookTasks> {
  protected readonly handlers: TaskHandlers<typeof webhookTasks> = {
    'delivery.attempt': async (p) => void (await this.deliverer.attempt(p.deliveryId, p.attempt)),
  };

  constructor(private readonly deliverer: WebhookDeliverer, private readonly queue: WebhookQueue, private readonly config: Config) {
    super(WebhooksProcessor.name, webhookTasks);
  }

  protected override sweepIntervalMs(): number {
    return this.config.env.WEBHOOK_SWEEP_INTERVAL_MS;
  }

  protected override sweep(): Promise<number> {
    return this.queue.enqueueDue();
  }
}
