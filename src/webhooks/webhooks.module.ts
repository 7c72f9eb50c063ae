import { DynamicModule, Module } from '@nestjs/common';
import { SecretBoxModule } from '../common/secret-box.module';
import { WebhookDeliverer } from './webhook-deliverer';
import { WebhookOutboxModule } from './webhook-outbox.module';
import { WebhookSender } from './webhook-sender';
import { WebhooksController } from './webhooks.controller';
import { WebhooksProcessor } from './webhooks.processor';
import { WebhooksService } from './webhooks.service';

/** Webhook endpoints (api) and delivery (worker role only). */
@Module({})
export class WebhooksModule {
  static register(opts: { worker: boolean }): DynamicModule {
    return {
      module: WebhooksModule,
      imports: [WebhookOutboxModule, SecretBoxModule],
      controllers: [WebhooksController],
      providers: [
        WebhooksService,
        ...(opts.worker ? [WebhookSender, WebhookDeliverer, WebhooksProcessor] : []),
      ],
    };
  }
}
