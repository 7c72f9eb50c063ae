import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { SecretBox } from '../common/secret-box';
import { ModelCatalog } from '../training/model-catalog';
import { AdapterStats } from './adapter-stats';
import { AgentClient } from './agent-client';
import { EvalPromotionGate } from '../evals/eval-promotion-gate';
import { PromotionGate } from './promotion-gate';
import { Reconciler } from './reconciler';
import { ServingController } from './serving.controller';
import { ServingProcessor } from './serving.processor';
import { SERVING_QUEUE, ServingQueue } from './serving.queue';
import { ServingService } from './serving.service';
import { VllmClient } from './vllm-client';
import { WebhookOutboxModule } from '../webhooks/webhook-outbox.module';
import { GatewayModule } from '../gateway/gateway.module';
import { ModelsController } from '../gateway/models.controller';
import { ModelsService } from '../gateway/models.service';

/**
 * Serving pools, deployments, aliases (api) and the reconciler (worker role only). Promotions go through the evals
 * gate: open unless a gate is configured for the alias or its pool (src/evals/eval-promotion-gate.ts).
 */
@Module({})
export class ServingModule {
  static register(opts: { worker: boolean }): DynamicModule {
    return {
      module: ServingModule,
      imports: [BullModule.registerQueue({ name: SERVING_QUEUE }), WebhookOutboxModule, GatewayModule],
      controllers: [ServingController, ModelsController],
      providers: [
        ModelCatalog,
        SecretBox,
        ServingService,
        ModelsService,
        ServingQueue,
        AgentClient,
        VllmClient,
        Reconciler,
        AdapterStats,
        { provide: PromotionGate, useClass: EvalPromotionGate },
        ...(opts.worker ? [ServingProcessor] : []),
      ],
      exports: [AdapterStats],
    };
  }
}
