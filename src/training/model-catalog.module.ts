import { Module } from '@nestjs/common';
import { ModelCatalog } from './model-catalog';

/** The one ModelCatalog of the process, for every module that reads model limits (training, datasets, serving). */
@Module({ providers: [ModelCatalog], exports: [ModelCatalog] })
export class ModelCatalogModule {}
