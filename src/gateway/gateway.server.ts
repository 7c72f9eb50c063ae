import http from 'node:http';
import type { Logger } from 'pino';
import { DomainError } from '../common/domain-error';
import { ErrorFilter } from '../common/http/error.filter';
import { metricsTokenMatches } from '../metrics/metrics-access';
import { Metrics } from '../metrics/metrics';
import { KeyCache } from '../projects/key-cache';
import { GatewayHandler } from './gateway.handler';
import { GatewayResponse, writeHead } from './response-head';
import { callableCards } from './model-cards';
import { RoutingTable } from './routing-table';

/**
 * The `gateway` role's HTTP server: the inference routes, GET /v1/models (what the caller can call now, from
 * memory) and health. Nothing else: the api role serves the rest of /v1. Access lines carry ids, sizes and
 * timings, never a body.
 */
export function createGatewayServer(handler: GatewayHandler, table: RoutingTable, keys: KeyCache, log: Logger, metrics?: { registry: Metrics; token: string }): http.Server {
  const errors = new ErrorFilter();
  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const json = JSON.stringify(body);
    writeHead(res, status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  };
  const fail = (res: http.ServerResponse, err: unknown) => {
    const { status, body, headers } = errors.toResponse(err);
    send(res, status, body, headers);
  };
  const models = async (req: http.IncomingMessage, res: http.ServerResponse, id: string | null) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const who = match ? (keys.cached(match[1]) ?? (await keys.authenticate(match[1]))) : null;
    if (!who) throw new DomainError('unauthorized', 'Incorrect API key provided.');
    const cards = callableCards(table.routes(who.projectId), who.projectId);
    if (id === null) return send(res, 200, { object: 'list', data: cards });
    const card = cards.find((c) => c.id === id);
    if (!card) throw new DomainError('model_not_found', `The model '${id}' does not exist or you do not have access to it.`, 'model');
    send(res, 200, card);
  };
  // Access lines are info: at a quieter level no listener is added at all (it would cost every request).
  const accessLog = log.isLevelEnabled('info');
  return http.createServer({ ServerResponse: GatewayResponse }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    // Every answer carries it (writeHead in response-head.ts), as the API's do.
    const requestId = (res.requestId = handler.requestIdFor(req));
    if (accessLog) {
      const t0 = performance.now();
      res.once('finish', () => log.info({ requestId, method: req.method, path, status: res.statusCode, ms: Math.round((performance.now() - t0) * 10) / 10 }, 'request'));
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') return void handler.handle('chat', req, res);
    if (req.method === 'POST' && path === '/v1/completions') return void handler.handle('completions', req, res);
    if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) return send(res, 200, { status: 'ok', role: 'gateway' });
    // METRICS_TOKEN: /metrics here, to the token only (a scraper holds no tenant key). METRICS_PORT: see MetricsServer.
    if (req.method === 'GET' && path === '/metrics' && metrics) {
      if (!metricsTokenMatches(req.headers.authorization, metrics.token)) return fail(res, new DomainError('unauthorized', 'Send the metrics token: Authorization: Bearer <METRICS_TOKEN>'));
      return void metrics.registry.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err) => fail(res, err),
      );
    }
    if (req.method === 'GET' && path.startsWith('/v1/models')) {
      const rest = path.slice('/v1/models'.length);
      const id = rest === '' || rest === '/' ? null : decodeURIComponent(rest.slice(1));
      return void models(req, res, id).catch((err) => fail(res, err));
    }
    fail(res, new DomainError('not_found', `Invalid URL (${req.method} ${path}): the gateway serves /v1/chat/completions, /v1/completions and /v1/models`));
  });
}
