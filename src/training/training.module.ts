import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { JobRunner } from './job-runner';
import { JobStopper } from './job-stopper';
import { JobState } from './job-state';
import { JobMetricsService } from './job-metrics.service';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';
import { JobReadCacheModule } from './job-read-cache.module';
import { ModelCatalogModule } from './model-catalog.module';
import { TrainingRuntimes } from './runtime/training-runtimes';
import { TRAINING_QUEUE, TrainingQueue } from './training.queue';
import { trainingProcessorClass } from './training.processor';
import { GpuHostsController } from './placement/gpu-hosts.controller';
import { GpuHostsService } from './placement/gpu-hosts.service';
import { OpenAIMigrationController } from './migrate/openai-migration.controller';
import { OpenAIMigration } from './migrate/openai-migration.service';
import { PlacementService } from './placement/placement.service';
import { KubernetesClustersController } from './placement/kubernetes-clusters.controller';
import { KubernetesClustersService } from './placement/kubernetes-clusters.service';
import { KubernetesPlacementService } from './placement/kubernetes-placement';
import { WebhookOutboxModule } from '../webhooks/webhook-outbox.module';

/** Fine-tuning jobs. The queue processor is only registered in processes that run the worker role. */
@Module({})
export class TrainingModule {
  static register(opts: { worker: boolean; lockDurationMs: number; stalledIntervalMs: number }): DynamicModule {
    return {
      module: TrainingModule,
      imports: [BullModule.registerQueue({ name: TRAINING_QUEUE }), WebhookOutboxModule, ModelCatalogModule, JobReadCacheModule],
      controllers: [JobsController, GpuHostsController, OpenAIMigrationController, KubernetesClustersController],
      providers: [
        JobState,
        JobsService,
        JobMetricsService,
        TrainingQueue,
        TrainingRuntimes,
        GpuHostsService,
        PlacementService,
        KubernetesClustersService,
        KubernetesPlacementService,
        JobRunner,
        JobStopper,
        OpenAIMigration,
        ...(opts.worker ? [trainingProcessorClass(opts)] : []),
      ],
      exports: [TrainingRuntimes, ModelCatalogModule],
    };
  }
}
