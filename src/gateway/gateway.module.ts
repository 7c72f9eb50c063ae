import { Module } from '@nestjs/common';
import { SecretBoxModule } from '../common/secret-box.module';
import { LimitsModule } from '../limits/limits.module';
import { ProjectsModule } from '../projects/projects.module';
import { AdapterStatsModule } from '../serving/adapter-stats.module';
import { UsageModule } from '../usage/usage.module';
import { CanaryRoutePolicy } from './canary-route.policy';
import { GatewayAdmission } from './gateway-admission';
import { OperationsObserver } from './operations.observer';
import { GatewayHandler } from './gateway.handler';
import { RoutePolicy } from './gateway-hooks';
import { ProviderModelsController } from './provider-models.controller';
import { ProviderModelsService } from './provider-models.service';
import { RoutingTable } from './routing-table';

/**
 * The inference gateway: the routing table (in memory, fed by the change feed), the replica choice seam and the
 * handler of /v1/chat/completions and /v1/completions. The transport and the router come from TransportModule.
 */
@Module({
  imports: [ProjectsModule, LimitsModule, UsageModule, AdapterStatsModule, SecretBoxModule],
  controllers: [ProviderModelsController],
  providers: [RoutingTable, { provide: RoutePolicy, useClass: CanaryRoutePolicy }, GatewayAdmission, GatewayHandler, OperationsObserver, ProviderModelsService],
  exports: [RoutingTable, GatewayHandler],
})
export class GatewayModule {}
