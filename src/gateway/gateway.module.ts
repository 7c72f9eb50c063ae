import { Module } from '@nestjs/common';
import { SecretBox } from '../common/secret-box';
import { ProjectsModule } from '../projects/projects.module';
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
  imports: [ProjectsModule],
  controllers: [ProviderModelsController],
  providers: [SecretBox, RoutingTable, RoutePolicy, GatewayHandler, ProviderModelsService],
  exports: [RoutingTable, GatewayHandler],
})
export class GatewayModule {}
