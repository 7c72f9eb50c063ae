import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mayCallModels, Principal } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { ErrorAnswer, ErrorFilter, errorHeaders } from '../common/http/error.filter';
import { acceptedRequestId } from '../common/http/request-id.middleware';
import { randomId } from '../common/ids';
import { Config } from '../config/config';
import { KeyCache } from '../projects/key-cache';
import { CancelSignal, retryAfterMs, UpstreamError } from '../serving/openai-http';
import { OpenAIHttpClient } from '../serving/openai-http.client';
import { ReplicaChoice, ReplicaRouter } from '../serving/replica-router';
import { ClientGone } from './client-gone';
import { GatewayAdmission, SessionHeader } from './gateway-admission';
import { INFERENCE_OBSERVERS, InferenceObserver, InferenceRecord, RoutePolicy } from './gateway-hooks';
import { InferenceBody, InferenceRoute, parseInferenceBody } from './inference-request';
import { requestIdOf, writeHead } from './response-head';
import { RoutingTable } from './routing-table';
import { relayJson, relayStream } from './upstream-relay';

const PATHS: Record<string, InferenceRoute> = { '/v1/chat/completions': 'chat', '/v1/completions': 'completions' };

/** The request as parsed and as it came (forwarded untouched when nothing in it changes). */
interface Incoming {
  body: InferenceBody;
  /**
   * The body's text, decoded once (for JSON.parse). Forwarded as text, it goes out in one write with the request's
   * headers; a Buffer takes a second chunk (measured in a bare node:http relay: ~20 us of ~240 per request more).
   */
  text: string;
}

/**
 * The body for the upstream: the model name it knows the model by, and on a stream the usage always asked for (so
 * every stream is metered; relayStream drops it when the client did not ask). When neither changes anything, the
 * client's text goes as it came: no serialising again of what was just parsed.
 */
function upstreamBody(upstreamModel: string, body: InferenceBody, text: string): string {
  const usageAsked = body.stream !== true || body.stream_options?.include_usage === true;
  if (upstreamModel === body.model && usageAsked) return text;
  const out: Record<string, unknown> = { ...body, model: upstreamModel };
  if (body.stream === true) out.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
  return JSON.stringify(out);
}

interface Target {
  url: string;
  headers: Record<string, string>;
  upstreamModel: string;
  replica: ReplicaChoice | null;
}

/**
 * POST /v1/chat/completions and /v1/completions: key from memory, body checked, model name resolved in the
 * caller's project, a replica that has it loaded chosen (or the provider's API), the answer passed through. Runs on
 * raw node:http objects (mounted before Nest's routing in `all`, alone in the `gateway` role): this is the path
 * whose every microsecond is paid per token stream, so it skips the framework.
 */
@Injectable()
export class GatewayHandler {
  private readonly logger = new Logger('Gateway');
  private readonly errors = new ErrorFilter();
  /** Request ids: unique per process (a random prefix) and counted, not drawn: one syscall less per request. */
  private readonly idPrefix = `req_${randomId(10)}`;
  private requests = 0;

  constructor(
    private readonly config: Config,
    private readonly keys: KeyCache,
    private readonly table: RoutingTable,
    private readonly router: ReplicaRouter,
    private readonly http: OpenAIHttpClient,
    private readonly policy: RoutePolicy,
    private readonly admission: GatewayAdmission,
    @Optional() @Inject(INFERENCE_OBSERVERS) private observers: InferenceObserver[] = [],
  ) {}

  /** Adds an observer at run time (the metering and metrics modules register theirs at start). */
  observe(observer: InferenceObserver): () => void {
    this.observers = [...this.observers, observer];
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  /** A request's id: the caller's x-request-id when it is a plain id (as the API takes it), else one made here. */
  requestIdFor(req: IncomingMessage): string {
    return acceptedRequestId(req.headers['x-request-id']) ?? this.idPrefix + (++this.requests).toString(36);
  }

  /** Express-style middleware: handles the two inference routes, passes anything else on. */
  middleware() {
    return (req: IncomingMessage, res: ServerResponse, next: () => void) => {
      const endpoint = req.method === 'POST' ? PATHS[(req.url ?? '').split('?')[0]] : undefined;
      if (!endpoint) return next();
      void this.handle(endpoint, req, res);
    };
  }

  async handle(endpoint: InferenceRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    const rec: InferenceRecord = {
      requestId: requestIdOf(res) ?? this.requestIdFor(req),
      endpoint, model: '', kind: null, versionId: null, poolId: null, replicaId: null, providerId: null, projectId: null, keyId: null,
      stream: false, status: 0, errorKind: null, usage: null, latencyMs: 0, ttftMs: null, requestBytes: 0, responseBytes: 0, retried: false,
      served: null, poolName: null, replicaName: null, arm: null,
    };
    // The client going away aborts whatever the upstream is doing for it.
    const abort = new ClientGone();
    let settle: ((actualTokens: number) => void) | null = null;
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    try {
      const principal = await this.authenticate(req);
      rec.projectId = principal.projectId;
      rec.keyId = principal.keyId;
      const raw = await this.readBody(req);
      rec.requestBytes = raw.length;
      const text = raw.toString('utf8');
      const body = parseInferenceBody(endpoint, text);
      rec.model = body.model;
      rec.stream = body.stream === true;
      // Limits before any work: none to check for most keys; under a limit, a Redis round trip only when this
      // gateway's allowance does not cover the request.
      const admitted = this.admission.admit(principal, body, res);
      if (admitted) settle = typeof admitted === 'function' ? admitted : await admitted;
      const session = req.headers[SessionHeader];
      await this.dispatch(endpoint, { body, text }, principal, rec, res, abort, startedAt, typeof session === 'string' ? session : null);
    } catch (err) {
      this.fail(err, rec, res);
    } finally {
      rec.latencyMs = performance.now() - startedAt;
      if (rec.status === 0) rec.status = res.statusCode;
      if (settle) settle(rec.usage?.total_tokens ?? 0);
      this.report(rec);
    }
  }

  private async authenticate(req: IncomingMessage): Promise<Principal> {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new DomainError('unauthorized', "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer YOUR_KEY'.");
    const principal = this.keys.cached(match[1]) ?? (await this.keys.authenticate(match[1]));
    if (!principal) throw new DomainError('unauthorized', 'Incorrect API key provided.');
    if (!mayCallModels(principal)) throw new DomainError('forbidden', `This API key may not call models (scopes: ${principal.scopes.join(', ')}): that needs the 'inference' or 'project' scope.`);
    return principal;
  }

  private readBody(req: IncomingMessage): Promise<Buffer> {
    const limit = this.config.env.GATEWAY_MAX_BODY_BYTES;
    const tooLarge = () => new DomainError('payload_too_large', `The request body exceeds the limit of ${limit} bytes.`, 'body');
    if (Number(req.headers['content-length']) > limit) return Promise.reject(tooLarge());
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          req.removeAllListeners('data');
          req.resume();
          return reject(tooLarge());
        }
        chunks.push(c);
      });
      req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
      req.once('error', reject);
    });
  }

  private async dispatch(endpoint: InferenceRoute, request: Incoming, who: Principal, rec: InferenceRecord, res: ServerResponse, signal: CancelSignal, startedAt: number, session: string | null) {
    const { body } = request;
    const route = this.table.resolve(who.projectId, body.model);
    if (!route) {
      rec.errorKind = 'model_not_found';
      throw new DomainError('model_not_found', `The model '${body.model}' does not exist or you do not have access to it.`, 'model');
    }
    rec.kind = route.kind;
    const path = endpoint === 'chat' ? '/chat/completions' : '/completions';
    let candidates: readonly ReplicaChoice[] = [];
    const targetFor = (replica: ReplicaChoice | null): Target =>
      route.kind === 'provider'
        ? { url: route.baseUrl + path, headers: route.apiKey ? { authorization: `Bearer ${route.apiKey}` } : {}, upstreamModel: route.upstreamModel, replica: null }
        : { url: `${replica!.url}/v1${path}`, headers: {}, upstreamModel: replica!.upstreamModel, replica };
    let first: Target;
    if (route.kind === 'provider') {
      rec.providerId = route.id;
      first = targetFor(null);
    } else {
      rec.versionId = route.versionId;
      candidates = this.policy.candidates(route, { projectId: who.projectId, keyId: who.keyId, user: typeof body.user === 'string' ? body.user : null, session });
      const replica = this.router.choose(candidates);
      if (!replica) {
        rec.errorKind = 'no_replica';
        throw new DomainError('service_unavailable', `No replica serving '${body.model}' is ready; try again shortly.`, 'model', { retryAfterSeconds: 1 });
      }
      first = targetFor(replica);
    }
    const clientUsage = body.stream_options?.include_usage === true;
    const send = (t: Target) => this.send(t, request, signal);
    let target = first;
    let upstream;
    try {
      upstream = await send(target);
    } catch (err) {
      // Nothing reached the model (refused, reset before the first byte): once more, elsewhere.
      const retry = err instanceof UpstreamError && err.kind === 'connect' && target.replica ? this.router.choose(candidates, target.replica.replicaId) : null;
      if (target.replica && err instanceof UpstreamError && err.kind === 'connect') this.router.markDown(target.replica.replicaId);
      if (!retry) throw err;
      rec.retried = true;
      target = targetFor(retry);
      upstream = await send(target);
    }
    rec.poolId = target.replica?.poolId ?? null;
    rec.replicaId = target.replica?.replicaId ?? null;
    rec.replicaName = target.replica?.replicaName ?? null;
    rec.poolName = target.replica?.poolName ?? null;
    rec.served = target.replica ? target.replica.served : target.upstreamModel;
    rec.arm = target.replica?.arm ?? null;
    const { res: answer, release } = upstream;
    try {
      const status = answer.statusCode ?? 502;
      if (status < 200 || status >= 300) {
        const text = (await this.http.readCapped(answer)).toString('utf8');
        rec.errorKind = 'upstream_status';
        return this.upstreamError(status, text, retryAfterMs(answer.headers), res, rec);
      }
      if (rec.stream) {
        const out = await relayStream(answer, res, {
          clientModel: body.model,
          forwardUsage: clientUsage,
          maxEventBytes: this.config.env.UPSTREAM_MAX_RESPONSE_BYTES,
          maxTotalBytes: this.config.env.UPSTREAM_MAX_STREAM_BYTES,
          startedAt,
        });
        Object.assign(rec, { usage: out.usage, ttftMs: out.ttftMs, responseBytes: out.responseBytes, status: 200 });
        if (out.error) rec.errorKind = out.error.kind === 'aborted' ? 'client_abort' : out.error.kind;
        return;
      }
      const whole = await this.http.readCapped(answer);
      const out = relayJson(whole, status, res, body.model);
      Object.assign(rec, { usage: out.usage, responseBytes: out.responseBytes, status });
    } finally {
      release();
    }
  }

  /** Opens the upstream request; the replica counts it in flight until `release`. */
  private async send(t: Target, { body, text }: Incoming, signal: CancelSignal) {
    const release = t.replica ? this.router.acquire(t.replica.replicaId) : () => undefined;
    try {
      const res = await this.http.open({
        url: t.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: body.stream === true ? 'text/event-stream' : 'application/json', ...t.headers },
        body: upstreamBody(t.upstreamModel, body, text),
        timeoutMs: this.config.env.GATEWAY_UPSTREAM_TIMEOUT_MS,
        signal,
      });
      if (t.replica) this.router.markUp(t.replica.replicaId);
      return { res, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * An upstream's error answer, in OpenAI's envelope: its 4xx (and 429/503) as they are, other 5xx as 502. A 429 or
   * 503 keeps the upstream's wait (Retry-After, retry-after-ms), so the client's SDK waits as long as it was asked to.
   */
  private upstreamError(status: number, text: string, waitMs: number | null, res: ServerResponse, rec: InferenceRecord) {
    let error: Record<string, unknown> | null = null;
    try {
      const parsed = JSON.parse(text) as { error?: unknown; detail?: unknown };
      if (parsed.error && typeof parsed.error === 'object') error = parsed.error as Record<string, unknown>;
      else if (typeof parsed.detail === 'string') error = { message: parsed.detail };
    } catch {
      error = null;
    }
    const passOn = status < 500 || status === 503;
    const out = passOn ? status : 502;
    const body = {
      error: {
        message: String(error?.message ?? (text.slice(0, 300) || `the model server answered ${status}`)),
        type: typeof error?.type === 'string' ? error.type : out >= 500 ? 'server_error' : 'invalid_request_error',
        param: typeof error?.param === 'string' ? error.param : null,
        code: passOn ? (error?.code ?? null) : 'upstream_error',
      },
    };
    const json = JSON.stringify(body);
    rec.status = out;
    rec.responseBytes = Buffer.byteLength(json);
    const wait = (out === 429 || out === 503) && waitMs !== null ? errorHeaders(out, { retryAfterSeconds: Math.ceil(waitMs / 1000), retryAfterMs: waitMs }) : {};
    writeHead(res, out, { ...wait, 'content-type': 'application/json', 'content-length': rec.responseBytes });
    res.end(json);
  }

  private fail(err: unknown, rec: InferenceRecord, res: ServerResponse) {
    const domain = err instanceof UpstreamError ? this.fromUpstream(err, rec) : err;
    if (domain instanceof DomainError && !rec.errorKind) rec.errorKind = domain.code === 'invalid_request' ? 'bad_request' : domain.code;
    if (!(domain instanceof DomainError)) rec.errorKind ??= 'internal';
    if (res.headersSent || res.destroyed) {
      if (!res.destroyed) res.end();
      return;
    }
    // No replica ready is an expected state, not a fault: answered without an error-level log line.
    const answer: ErrorAnswer =
      domain instanceof DomainError && domain.code === 'service_unavailable'
        ? { status: 503, body: { error: { message: domain.message, type: 'server_error', param: domain.param, code: domain.code } }, headers: errorHeaders(503, domain) }
        : this.errors.toResponse(domain);
    const json = JSON.stringify(answer.body);
    rec.status = answer.status;
    writeHead(res, answer.status, { ...answer.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  }

  private fromUpstream(err: UpstreamError, rec: InferenceRecord): DomainError {
    rec.errorKind = err.kind === 'aborted' ? 'client_abort' : `upstream_${err.kind}`;
    if (err.kind === 'connect') return new DomainError('service_unavailable', `No replica serving '${rec.model}' could be reached; try again shortly.`, null, { retryAfterSeconds: 1, cause: err });
    if (err.kind === 'timeout') return new DomainError('upstream_error', `The model server did not answer within ${this.config.env.GATEWAY_UPSTREAM_TIMEOUT_MS} ms.`, null, { cause: err });
    return new DomainError('upstream_error', `The model server's answer could not be passed on: ${err.message}`, null, { cause: err });
  }

  private report(rec: InferenceRecord) {
    for (const o of this.observers) {
      try {
        o.onRequestEnd(rec);
      } catch (err) {
        this.logger.warn({ error: (err as Error).message }, 'an inference observer failed');
      }
    }
  }
}
