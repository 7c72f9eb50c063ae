import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { ModelCatalog } from '../training/model-catalog';
import { DatasetSplitter } from './dataset-splitter';
import { DatasetsController } from './datasets.controller';
import { DatasetsProcessor } from './datasets.processor';
import { DATASETS_QUEUE, DatasetsQueue } from './datasets.queue';
import { DatasetsService } from './datasets.service';
import { FilesController } from './files.controller';
import { UploadsController } from './uploads.controller';
import { UploadsService } from './uploads.service';

/**
 * Datasets, /v1/files, /v1/uploads. The processor (deferred token counts, upload expiry) runs only in the worker role.
 * ModelCatalog is stateless config; datasets read the context lengths from their own instance rather than import the
 * training module (which depends on datasets).
 */
@Module({})
export class DatasetsModule {
  static register(opts: { worker: boolean }): DynamicModule {
    return {
      module: DatasetsModule,
      // Global: evals import benchmark files as datasets, and a second register() would mount the controllers twice.
      global: true,
      imports: [BullModule.registerQueue({ name: DATASETS_QUEUE })],
      controllers: [FilesController, DatasetsController, UploadsController],
      providers: [ModelCatalog, DatasetsService, DatasetSplitter, UploadsService, DatasetsQueue, ...(opts.worker ? [DatasetsProcessor] : [])],
      exports: [DatasetsService],
    };
  }
}
