import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { JobRunner } from './job-runner';
import { JobState } from './job-state';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';
import { ModelCatalog } from './model-catalog';
import { ModelsController } from './models.controller';
import { DockerRuntime } from './runtime/docker-runtime';
import { TRAINING_QUEUE, TrainingQueue } from './training.queue';
import { TrainingProcessor } from './training.processor';

/** Fine-tuning jobs. The queue processor is only registered in processes that run the worker role. */
@Module({})
export class TrainingModule {
  static register(opts: { worker: boolean }): DynamicModule {
    return {
      module: TrainingModule,
      imports: [BullModule.registerQueue({ name: TRAINING_QUEUE })],
      controllers: [JobsController, ModelsController],
      providers: [ModelCatalog, JobState, JobsService, TrainingQueue, DockerRuntime, JobRunner, ...(opts.worker ? [TrainingProcessor] : [])],
      exports: [DockerRuntime, ModelCatalog],
    };
  }
}
