import { Module } from '@nestjs/common';
import { ApiKeysService } from './api-keys.service';
import { KeyCache } from './key-cache';
import { ProjectsController } from './projects.controller';
import { ProjectsService } from './projects.service';

@Module({
  controllers: [ProjectsController],
  providers: [ProjectsService, ApiKeysService, KeyCache],
  exports: [ProjectsService, ApiKeysService, KeyCache],
})
export class ProjectsModule {}
