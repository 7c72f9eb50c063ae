import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { SecretBox } from '../common/secret-box';
import { ModelCatalog } from '../training/model-catalog';
import { AgentClient } from './agent-client';
import { OpenPromotionGate, PromotionGate } from './promotion-gate';
import { Reconciler } from './reconciler';
import { ServingController } from './serving.controller';
import { ServingProcessor } from './serving.processor';
import { SERVING_QUEUE, ServingQueue } from './serving.queue';
import { ServingService } from './serving.service';
import { VllmClient } from './vllm-client';
import { WebhookOutboxModule } from '../webhooks/webhook-outbox.module';

/**
 * Serving pools, deployments, aliases (api) and the reconciler (worker role only). The promotion gate is open until
 * the evals feature provides one.
 */
@Module({})
export class ServingModule {
  static register(opts: { worker: boolean }): DynamicModule {
    return {
      module: ServingModule,
      imports: [BullModule.registerQueue({ name: SERVING_QUEUE }), WebhookOutboxModule],
      controllers: [ServingController],
      providers: [
        ModelCatalog,
        SecretBox,
        ServingService,
        ServingQueue,
        AgentClient,
        VllmClient,
        Reconciler,
        { provide: PromotionGate, useClass: OpenPromotionGate },
        ...(opts.worker ? [ServingProcessor] : []),
      ],
    };
  }
}
