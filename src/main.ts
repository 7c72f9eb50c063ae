import 'reflect-metadata';
import { INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule, GatewayRoleModule } from './app.module';
import { requestIdMiddleware } from './common/http/request-id.middleware';
import { createAccessLogger, createRootLogger, JsonLogger } from './common/logger';
import { dashboardMiddleware } from './dashboard/dashboard-static';
import { startProbeServer } from './health/health-server';
import { Config } from './config/config';
import { ConfigError } from './config/config.schema';
import { GatewayHandler } from './gateway/gateway.handler';
import { createGatewayServer } from './gateway/gateway.server';
import { RoutingTable } from './gateway/routing-table';
import { Metrics } from './metrics/metrics';
import { KeyCache } from './projects/key-cache';
import { ProjectsService } from './projects/projects.service';
import { ObjectStore } from './storage/object-store';

export interface Started {
  app: INestApplicationContext;
  url?: string;
  /** Only when a key was created at this start (dev mode without LORAPLANE_API_KEY). */
  createdApiKey?: string;
  close(): Promise<void>;
}

/** Starts the roles the config asks for. Used by main() and by the end-to-end tests. */
export async function start(config: Config): Promise<Started> {
  const format = config.env.LOG_FORMAT === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.env.LOG_FORMAT;
  const root = createRootLogger(config.env.LOG_LEVEL, format);
  const logger = new JsonLogger(root);
  if (config.env.LORAPLANE_ROLE === 'gateway') return startGateway(config, root, logger);
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

/** The `gateway` role: the inference routes on their own node:http server, no API, no worker. */
async function startGateway(config: Config, root: ReturnType<typeof createRootLogger>, logger: JsonLogger): Promise<Started> {
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

async function main() {
  let config: Config;
  try {
    config = Config.fromEnv(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`loraplane: ${err.message}\nSee .env.example for every variable.\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const started = await start(config);
  const log = new Logger('loraplane');
  // Graceful stop: finish in-flight requests, let workers hand their tasks back, close connections, exit 0.
  // Training containers keep running; the next worker re-attaches to them by label.
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log.log(`${signal}: shutting down`);
      started.close().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  log.log(`role=${config.env.LORAPLANE_ROLE} mode=${config.env.LORAPLANE_MODE}${started.url ? ` listening on ${started.url}` : ''}`);
  // `npm run dev` passes --no-welcome: it prints its own, fuller one once its local serving pool is up.
  if (started.url && !process.argv.includes('--no-welcome')) {
    const key = started.createdApiKey ?? config.env.LORAPLANE_API_KEY;
    const shown = started.createdApiKey ? key : key ? `${key.slice(0, 8)}... (LORAPLANE_API_KEY)` : '<an API key>';
    // Printed for a person at a terminal, not as a log line; the key appears only when it was just created.
    process.stdout.write(
      [
        '',
        `  loraplane is running: ${started.url}`,
        `  API docs:             ${started.url}/docs`,
        `  API key:              ${shown}${started.createdApiKey ? '   (shown once; set LORAPLANE_API_KEY to keep one across restarts)' : ''}`,
        '',
        '  Try it with the official openai SDK (npm i openai):',
        `    const client = new OpenAI({ baseURL: '${started.url}/v1', apiKey: process.env.LORAPLANE_API_KEY });`,
        "    const file = await client.files.create({ file: fs.createReadStream('train.jsonl'), purpose: 'fine-tune' });",
        "    const job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id });",
        '    // once it succeeded (a pool marked auto_deploy serves it within seconds):',
        "    const answer = await client.chat.completions.create({ model: job.fine_tuned_model, messages: [{ role: 'user', content: 'Hi' }] });",
        '',
        '  or curl:',
        `    curl -H "Authorization: Bearer $LORAPLANE_API_KEY" ${started.url}/v1/models`,
        `    curl -H "Authorization: Bearer $LORAPLANE_API_KEY" -H 'content-type: application/json' ${started.url}/v1/chat/completions \\`,
        `      -d '{"model": "tiny-lora", "messages": [{"role": "user", "content": "Hi"}]}'`,
        '',
      ].join('\n'),
    );
  }
}

/** Starts the process as `npm start` does; also the container image's entry point (deploy/entrypoint.js). */
export function runMain(): void {
  main().catch((err) => {
    process.stderr.write(`loraplane failed to start: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}

if (require.main === module) runMain();
