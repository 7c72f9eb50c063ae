import { INestApplicationContext } from '@nestjs/common';
import http from 'node:http';
import { HealthController } from './health.controller';

/**
 * /healthz and /readyz for a process that serves no API (the worker role), so Kubernetes can probe it like the api
 * and gateway pods. The answers are HealthController's own; nothing else is served on this port.
 */
export async function startProbeServer(app: INestApplicationContext, port: number, host: string): Promise<http.Server> {
  const health = app.get(HealthController);
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' });
    if (req.url === '/healthz') return send(200, health.healthz());
    if (req.url === '/readyz') {
      return void health.readiness().then((r) => send(r.down.length ? 503 : 200, r), (err: Error) => send(503, { status: 'unavailable', error: err.message }));
    }
    send(404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
