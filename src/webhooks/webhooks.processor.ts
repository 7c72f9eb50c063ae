import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { Config } from '../config/config';
import { WebhookDeliverer } from './webhook-deliverer';
import { WEBHOOKS_QUEUE, WebhookQueue, WebhookTask, WebhookTaskPayload, webhookTasks } from './webhooks.queue';

type Handlers = { [T in WebhookTask]: (payload: WebhookTaskPayload<T>) => Promise<void> };

/**
 * Worker side of webhooks: makes delivery attempts (many at once; a slow receiver holds one slot for at most
 * WEBHOOK_TIMEOUT_MS) and, at start and every WEBHOOK_SWEEP_INTERVAL_MS, enqueues every due delivery found in
 * Postgres: that is how deliveries survive Redis losing its data, a worker dying mid-attempt, or a nudge that failed.
 */
@Processor(WEBHOOKS_QUEUE, { concurrency: 16 })
export class WebhooksProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhooksProcessor.name);
  private readonly handlers: Handlers;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deliverer: WebhookDeliverer, private readonly queue: WebhookQueue, private readonly config: Config) {
    super();
    this.handlers = { 'delivery.attempt': async (p) => void (await this.deliverer.attempt(p.deliveryId, p.attempt)) };
  }

  async process(job: Job): Promise<void> {
    const name = job.name as WebhookTask;
    const schema = webhookTasks[name];
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    await this.handlers[name](payload.data);
  }

  onApplicationBootstrap() {
    const sweep = async () => {
      try {
        await this.queue.enqueueDue();
      } catch (err) {
        this.logger.warn({ err }, 'could not sweep due webhook deliveries; will try again');
      }
    };
    void sweep();
    this.timer = setInterval(() => void sweep(), this.config.env.WEBHOOK_SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy() {
    if (this.timer) clearInterval(this.timer);
  }
}
