import { Module } from '@nestjs/common';
import { ApiKeysService } from './api-keys.service';
import { ProjectsController } from './projects.controller';
import { ProjectsService } from './projects.service';

@Module({
  controllers: [ProjectsController],
  providers: [ProjectsService, ApiKeysService],
  exports: [ProjectsService, ApiKeysService],
})
export class ProjectsModule {}
