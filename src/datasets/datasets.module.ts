import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { ModelCatalogModule } from '../training/model-catalog.module';
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
 * Datasets read context lengths from the shared ModelCatalogModule rather than import the training module (which
 * depends on datasets).
 */
@Module({})
export class DatasetsModule {
  static register(opts: { worker: boolean }): DynamicModule {
    return {
      module: DatasetsModule,
      // Global: evals import benchmark files as datasets, and a second register() would mount the controllers twice.
      global: true,
      imports: [BullModule.registerQueue({ name: DATASETS_QUEUE }), ModelCatalogModule],
      controllers: [FilesController, DatasetsController, UploadsController],
      providers: [DatasetsService, DatasetSplitter, UploadsService, DatasetsQueue, ...(opts.worker ? [DatasetsProcessor] : [])],
      exports: [DatasetsService],
    };
  }
}
