import { DynamicModule, Module } from '@nestjs/common';
import { Config } from './config/config';
import { ConfigModule } from './config/config.module';
import { DbModule } from './db/db.module';
import { NetModule } from './common/net/net.module';
import { GatewayModule } from './gateway/gateway.module';
import { MetricsModule } from './metrics/metrics.module';
import { TransportModule } from './serving/openai-http.client';

/**
 * The `gateway` role alone: keys, routes, transport. No queues, no object store, no API controllers. In a file of its
 * own, apart from AppModule, so that a gateway process never loads the rest of the app (see start-gateway.ts).
 */
@Module({})
export class GatewayRoleModule {
  static register(config: Config): DynamicModule {
    return {
      module: GatewayRoleModule,
      imports: [ConfigModule.forConfig(config), DbModule, NetModule, TransportModule, MetricsModule.register({ worker: false, http: false }), GatewayModule],
    };
  }
}
