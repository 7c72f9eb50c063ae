import { Module } from '@nestjs/common';
import { LimitsController } from './limits.controller';
import { LimitsService } from './limits.service';
import { RateLimiter } from './rate-limiter';

@Module({
  controllers: [LimitsController],
  providers: [LimitsService, RateLimiter],
  exports: [LimitsService, RateLimiter],
})
export class LimitsModule {}
