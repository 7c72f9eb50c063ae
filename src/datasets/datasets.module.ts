import { Module } from '@nestjs/common';
import { DatasetsService } from './datasets.service';
import { FilesController } from './files.controller';

@Module({ controllers: [FilesController], providers: [DatasetsService], exports: [DatasetsService] })
export class DatasetsModule {}
