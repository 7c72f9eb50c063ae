import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { JobRunner } from './job-runner';
import { JobState } from './job-state';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';
import { ModelCatalog } from './model-catalog';
import { DockerRuntime } from './runtime/docker-runtime';
import { TRAINING_QUEUE, TrainingQueue } from './training.queue';
import { trainingProcessorClass } from './training.processor';
import { DockerEngines } from './placement/docker-engines';
import { GpuHostsController } from './placement/gpu-hosts.controller';
import { GpuHostsService } from './placement/gpu-hosts.service';
import { PlacementService } from './placement/placement.service';
import { WebhookOutboxModule } from '../webhooks/webhook-outbox.module';

/** Fine-tuning jobs. The queue processor is only registered in processes that run the worker role. */
@Module({})
export class TrainingModule {
  static register(opts: { worker: boolean; lockDurationMs: number; stalledIntervalMs: number }): DynamicModule {
    return {
      module: TrainingModule,
      imports: [BullModule.registerQueue({ name: TRAINING_QUEUE }), WebhookOutboxModule],
      controllers: [JobsController, GpuHostsController],
      providers: [
        ModelCatalog,
        JobState,
        JobsService,
        TrainingQueue,
        DockerRuntime,
        DockerEngines,
        GpuHostsService,
        PlacementService,
        JobRunner,
        ...(opts.worker ? [trainingProcessorClass(opts)] : []),
      ],
      exports: [DockerRuntime, ModelCatalog],
    };
  }
}
