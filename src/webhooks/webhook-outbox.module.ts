import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { WebhookOutbox } from './webhook-outbox';
import { WEBHOOKS_QUEUE, WebhookQueue } from './webhooks.queue';

/** The outbox, for the modules whose state changes are events (training, serving, evals). */
@Module({
  imports: [BullModule.registerQueue({ name: WEBHOOKS_QUEUE })],
  providers: [WebhookQueue, WebhookOutbox],
  exports: [WebhookQueue, WebhookOutbox],
})
export class WebhookOutboxModule {}
