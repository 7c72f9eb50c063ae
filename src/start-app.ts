import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import type { Logger as PinoLogger } from 'pino';
import { AppModule } from './app.module';
import { requestIdMiddleware } from './common/http/request-id.middleware';
import { createAccessLogger, JsonLogger } from './common/logger';
import { Config } from './config/config';
import { dashboardMiddleware } from './dashboard/dashboard-static';
import { GatewayHandler } from './gateway/gateway.handler';
import { startProbeServer } from './health/health-server';
import { ProjectsService } from './projects/projects.service';
import type { Started } from './started';
import { ObjectStore } from './storage/object-store';

/** The `api`, `worker` and `all` roles: the whole app (AppModule), with the HTTP API when the role serves it. */
export async function startApp(config: Config, root: PinoLogger, logger: JsonLogger, format: 'json' | 'pretty'): Promise<Started> {
  const module = AppModule.register(config);
  let app: INestApplicationContext;
  let url: string | undefined;
  if (config.runsApi) {
    const http = await NestFactory.create<NestExpressApplication>(module, { logger, bodyParser: false });
    // No ETag on API answers (none of their clients revalidates; computing one hashed every response body).
    http.set('etag', false);
    http.disable('x-powered-by');
    http.use(requestIdMiddleware);
    http.use(accessLog(createAccessLogger(config.env.LOG_LEVEL, format)));
    // The inference routes run before Nest's body parsing and routing (they read and cap their bodies themselves).
    if (config.runsGateway) http.use(http.get(GatewayHandler).middleware());
    const dashboard = dashboardMiddleware();
    if (dashboard) http.use(dashboard);
    else root.warn('dashboard not built (dist/public missing): run `npm run build` to serve it at /');
    http.useBodyParser('json', { limit: '1mb' });
    http.useBodyParser('urlencoded', { limit: '1mb', extended: true });
    app = http;
  } else {
    app = await NestFactory.createApplicationContext(module, { logger });
  }
  let createdKey: string | undefined;
  try {
    await app.get(ObjectStore).ensureBucket();
    ({ createdKey } = await app.get(ProjectsService).bootstrap());
    if (config.runsApi) {
      const http = app as NestExpressApplication;
      await http.listen(config.env.PORT, config.env.HOST);
      const address = http.getHttpServer().address();
      const port = typeof address === 'object' && address ? address.port : config.env.PORT;
      url = config.env.PUBLIC_URL ?? `http://localhost:${port}`;
    }
  } catch (err) {
    // A half-started app still holds Redis and Postgres connections (and a queue worker): release them.
    await app.close().catch(() => undefined);
    throw err;
  }
  // Roles without the API still answer Kubernetes' probes when asked to (PROBE_PORT).
  const probes = !config.runsApi && config.env.PROBE_PORT ? await startProbeServer(app, config.env.PROBE_PORT, config.env.HOST) : null;
  const close = async () => {
    probes?.close();
    await app.close();
  };
  return { app, url, createdApiKey: createdKey, close };
}

function accessLog(access: ReturnType<typeof createAccessLogger>) {
  return (req: Request, res: Response, next: NextFunction) => {
    const t0 = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';
      access[level]({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  };
}
