import { Module } from '@nestjs/common';
import { ProjectsModule } from '../projects/projects.module';
import { LimitsController } from './limits.controller';
import { LimitsService } from './limits.service';
import { RateLimiter } from './rate-limiter';

@Module({
  imports: [ProjectsModule],
  controllers: [LimitsController],
  providers: [LimitsService, RateLimiter],
  exports: [LimitsService, RateLimiter],
})
export class LimitsModule {}
