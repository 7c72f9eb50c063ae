import { NestFactory } from '@nestjs/core';
import type { Logger as PinoLogger } from 'pino';
import { JsonLogger } from './common/logger';
import { Config } from './config/config';
import { GatewayHandler } from './gateway/gateway.handler';
import { createGatewayServer } from './gateway/gateway.server';
import { RoutingTable } from './gateway/routing-table';
import { GatewayRoleModule } from './gateway-role.module';
import { Metrics } from './metrics/metrics';
import { KeyCache } from './projects/key-cache';
import type { Started } from './started';

/** The `gateway` role: the inference routes on their own node:http server, no API, no worker. */
export async function startGateway(config: Config, root: PinoLogger, logger: JsonLogger): Promise<Started> {
  const app = await NestFactory.createApplicationContext(GatewayRoleModule.register(config), { logger });
  const token = config.env.METRICS_TOKEN;
  const server = createGatewayServer(app.get(GatewayHandler), app.get(RoutingTable), app.get(KeyCache), root, token ? { registry: app.get(Metrics), token } : undefined);
  server.keepAliveTimeout = 65_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.env.PORT, config.env.HOST, resolve);
    });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.env.PORT;
  const url = config.env.PUBLIC_URL ?? `http://localhost:${port}`;
  const close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await app.close();
  };
  return { app, url, close };
}
