import { Module } from '@nestjs/common';
import { UsageMeter } from './usage-meter';
import { UsageController } from './usage.controller';
import { UsageService } from './usage.service';

@Module({
  controllers: [UsageController],
  providers: [UsageService, UsageMeter],
  exports: [UsageMeter],
})
export class UsageModule {}
