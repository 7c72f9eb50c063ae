import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { AdaptersModule } from './adapters/adapters.module';
import { ApiKeyGuard } from './common/auth/api-key.guard';
import { ErrorFilter } from './common/http/error.filter';
import { LegacySecretResealer } from './common/legacy-secret-resealer';
import { SecretBoxModule } from './common/secret-box.module';
import { Config } from './config/config';
import { ConfigModule } from './config/config.module';
import { DatasetsModule } from './datasets/datasets.module';
import { EvalsModule } from './evals/evals.module';
import { GatewayModule } from './gateway/gateway.module';
import { TransportModule } from './serving/openai-http.client';
import { DbModule } from './db/db.module';
import { NetModule } from './common/net/net.module';
import { HealthController } from './health/health.controller';
import { DocsController } from './openapi/docs.controller';
import { OpenApiBuilder } from './openapi/openapi.builder';
import { ProjectsModule } from './projects/projects.module';
import { MetricsModule } from './metrics/metrics.module';
import { QuotasModule } from './projects/quotas';
import { ServingModule } from './serving/serving.module';
import { StorageModule } from './storage/storage.module';
import { JobHooksModule } from './training/job-hooks';
import { TrainingModule } from './training/training.module';
import { WebhooksModule } from './webhooks/webhooks.module';

@Module({})
export class AppModule {
  static register(config: Config): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forConfig(config),
        DbModule,
        SecretBoxModule,
        TransportModule,
        NetModule,
        QuotasModule,
        JobHooksModule,
        StorageModule,
        DiscoveryModule,
        BullModule.forRoot({ connection: { url: config.env.REDIS_URL }, prefix: config.env.QUEUE_PREFIX }),
        ProjectsModule,
        MetricsModule.register({ worker: config.runsWorker, http: config.runsApi }),
        GatewayModule,
        DatasetsModule.register({ worker: config.runsWorker }),
        AdaptersModule,
        ServingModule.register({ worker: config.runsWorker }),
        WebhooksModule.register({ worker: config.runsWorker }),
        EvalsModule.register({ worker: config.runsWorker, lockDurationMs: config.env.WORKER_LOCK_MS, stalledIntervalMs: config.env.WORKER_STALLED_INTERVAL_MS }),
        TrainingModule.register({
          worker: config.runsWorker,
          lockDurationMs: config.env.WORKER_LOCK_MS,
          stalledIntervalMs: config.env.WORKER_STALLED_INTERVAL_MS,
        }),
      ],
      controllers: [HealthController, DocsController],
      providers: [
        OpenApiBuilder,
        LegacySecretResealer,
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
      ],
    };
  }
}
