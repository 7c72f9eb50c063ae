import { BullModule } from '@nestjs/bullmq';
import { WebhookOutboxModule } from '../webhooks/webhook-outbox.module';
import { DynamicModule, Module } from '@nestjs/common';
import { SecretBoxModule } from '../common/secret-box.module';
import { SuiteImporter } from './benchmarks/suite-importer';
import { ChatTargetClient } from './chat-target-client';
import { ComparisonReports } from './comparison-reports';
import { ComparisonsController } from './comparisons.controller';
import { ComparisonsService } from './comparisons.service';
import { EvalGatesController } from './eval-gates.controller';
import { EvalGatesService } from './eval-gates.service';
import { EvalPrices } from './eval-prices';
import { EvalReports } from './eval-reports';
import { EvalRunner } from './eval-runner';
import { EvalsController } from './evals.controller';
import { evalsProcessorClass } from './evals.processor';
import { EVALS_QUEUE, EvalsQueue } from './evals.queue';
import { EvalsService } from './evals.service';
import { SuiteImportController } from './suite-import.controller';
import { MigrationComparisonController } from './migration-comparison.controller';
import { MigrationComparisons } from './migration-comparison';
import { SuiteItems } from './suite-items';
import { TargetEndpoints } from './target-endpoints';

/**
 * Evals: targets, suites, runs, reports and promotion gates (api); the runner (worker role only). The gate itself
 * (EvalPromotionGate) is bound in ServingModule, where the promotions happen; it reads only Postgres.
 */
@Module({})
export class EvalsModule {
  static register(opts: { worker: boolean; lockDurationMs: number; stalledIntervalMs: number }): DynamicModule {
    return {
      module: EvalsModule,
      imports: [BullModule.registerQueue({ name: EVALS_QUEUE }), WebhookOutboxModule, SecretBoxModule],
      controllers: [SuiteImportController, ComparisonsController, EvalsController, EvalGatesController, MigrationComparisonController],
      providers: [EvalsService, SuiteImporter, MigrationComparisons, EvalPrices, ComparisonsService, ComparisonReports, EvalsQueue, EvalReports, EvalGatesService, SuiteItems, TargetEndpoints, ChatTargetClient, EvalRunner, ...(opts.worker ? [evalsProcessorClass(opts)] : [])],
    };
  }
}
