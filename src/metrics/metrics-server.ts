import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Config } from '../config/config';
import { metricsTokenMatches } from './metrics-access';
import { Metrics } from './metrics';

/**
 * A bare HTTP listener for /metrics where the main server cannot serve it: on METRICS_PORT (no token: a port kept
 * off the public network), or, in the worker role (which has no HTTP server) with only METRICS_TOKEN, on PORT with
 * the token. Nothing else is served here.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(MetricsServer.name);
  private server: http.Server | null = null;

  constructor(private readonly metrics: Metrics, private readonly config: Config) {}

  /** The port it listens on (after start), or null when it does not run. */
  get port(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? (a as AddressInfo).port : null;
  }

  async onApplicationBootstrap() {
    const { METRICS_PORT, METRICS_TOKEN, PORT, HOST } = this.config.env;
    const port = METRICS_PORT ?? (METRICS_TOKEN && !this.config.runsApi ? PORT : undefined);
    if (port === undefined) return;
    const token = METRICS_PORT === undefined ? METRICS_TOKEN : undefined;
    this.server = http.createServer((req, res) => void this.handle(req, res, token));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, HOST, () => resolve());
    });
    this.logger.log(`metrics on http://${HOST}:${this.port}/metrics${token ? ' (token)' : ''}`);
  }

  async onModuleDestroy() {
    const server = this.server;
    this.server = null;
    if (server) await new Promise((r) => server.close(r));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, token: string | undefined) {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (token && !metricsTokenMatches(req.headers.authorization, token)) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('unauthorized\n');
      return;
    }
    try {
      const body = await this.metrics.text();
      res.writeHead(200, { 'content-type': this.metrics.contentType }).end(body);
    } catch (err) {
      this.logger.error({ err }, 'metrics collection failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end('collection failed\n');
    }
  }
}
