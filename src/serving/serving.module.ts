import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { SecretBoxModule } from '../common/secret-box.module';
import { JobReadCacheModule } from '../training/job-read-cache.module';
import { ModelCatalogModule } from '../training/model-catalog.module';
import { AdaptersModule } from '../adapters/adapters.module';
import { AdapterStatsModule } from './adapter-stats.module';
import { AgentClient } from './agent-client';
import { AutoDeploy } from './auto-deploy';
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
      imports: [BullModule.registerQueue({ name: SERVING_QUEUE }), WebhookOutboxModule, GatewayModule, AdaptersModule, AdapterStatsModule, ModelCatalogModule, SecretBoxModule, JobReadCacheModule],
      controllers: [ServingController, ModelsController],
      providers: [
        ServingService,
        ModelsService,
        ServingQueue,
        AgentClient,
        VllmClient,
        Reconciler,
        { provide: PromotionGate, useClass: EvalPromotionGate },
        ...(opts.worker ? [ServingProcessor, AutoDeploy] : []),
      ],
    };
  }
}
