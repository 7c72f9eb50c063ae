import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { Http1Pool, Http1Target } from './http1-client';

/**
 * The one HTTP transport for every OpenAI-compatible server loraplane calls (vLLM replicas, the tiny server, provider
 * APIs, eval targets, OpenAI's Files and Fine-tuning API for migrations) and for the adapter agents beside the replicas. Keep-alive sockets rather than fetch: the
 * gateway pays for every microsecond, and a socket pool plus `lookup` is where a connect-time address check (no
 * private addresses for tenant-supplied URLs) plugs in. `http:` URLs (replicas and agents, on the gateway's hot
 * path) go through a lean HTTP/1.1 client of our own (./http1-client.ts, which says why); `https:` through node:https.
 *
 * Every read of a body is capped: an upstream is often tenant-controlled, and an endless or huge answer must fail
 * that one call with a clear message, never grow this process's memory.
 */
export type UpstreamFailure =
  /** No connection, or it broke before the first byte of the answer: safe to try another replica. */
  | 'connect'
  | 'timeout'
  /** The answer was not 2xx; `status` and the parsed error envelope say why. */
  | 'status'
  | 'too_large'
  /** The address guard refused where the URL leads (not retried: another try leads to the same place). */
  | 'refused'
  /** The body broke off or was not what the API promises. */
  | 'invalid'
  | 'aborted';

export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly kind: UpstreamFailure,
    readonly status: number | null = null,
    readonly envelope: ErrorEnvelope | null = null,
    readonly retryAfterMs: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/** OpenAI's error object, as far as an upstream filled it in. */
export interface ErrorEnvelope {
  message: string;
  type: string | null;
  param: string | null;
  code: string | number | null;
}

/**
 * What the transport needs of an AbortSignal. An AbortSignal is one; the gateway passes a lighter one of its own
 * (src/gateway/client-gone.ts), since an AbortController per request showed in its profile.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface UpstreamRequest {
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Time to the answer's headers (and, for `json`/`text`, to its whole body). */
  timeoutMs: number;
  signal?: CancelSignal;
}

/** An answer whose head is in, its body streaming: node's IncomingMessage (https) or an Http1Answer (http). */
export type UpstreamAnswer = Readable & { statusCode?: number; headers: http.IncomingHttpHeaders };

/** A URL taken apart once: the gateway calls the same few replica URLs over and over. */
interface ParsedTarget {
  host: string;
  /** For https: what https.request takes (as node's own urlToHttpOptions makes it from a URL). */
  options: http.RequestOptions;
  /** For http: where the HTTP/1.1 client sends it; null for https. */
  http1: Http1Target | null;
  /** Basic credentials from the URL's user:password, as an Authorization value (http; https passes options.auth). */
  basicAuth: string | null;
  refused: Error | null;
}

/** Distinct URLs whose parse is kept (replicas, providers, agents); past this the cache starts over. */
const MAX_PARSED_TARGETS = 1024;

export interface TransportOptions {
  /** Largest body `json`/`text`/`readCapped` accept. */
  maxResponseBytes: number;
  /** Resolves host names for new connections; the place for an address guard. */
  lookup?: LookupFunction;
  /** Judges an IP literal in a URL (net.connect does not call `lookup` for those): an Error refuses it. */
  refusal?: (address: string) => Error | null;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

export class OpenAIHttp {
  private readonly http1: Http1Pool;
  private readonly httpsAgent: https.Agent;
  private readonly targets = new Map<string, ParsedTarget>();

  constructor(readonly options: TransportOptions) {
    this.http1 = new Http1Pool({ lookup: options.lookup, maxFreePerOrigin: 256 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo', lookup: options.lookup });
  }

  /**
   * Sends the request and resolves with the answer once its headers are in (any status; the body not read). A
   * failure before that is an UpstreamError of kind `connect` (nothing reached the model) or `timeout`.
   */
  open(req: UpstreamRequest): Promise<UpstreamAnswer> {
    return this.attempt(req, true);
  }

  private attempt(req: UpstreamRequest, mayRetryStale: boolean): Promise<UpstreamAnswer> {
    return new Promise((resolve, reject) => {
      const target = this.target(req.url);
      const { host, refused } = target;
      if (refused) return reject(new UpstreamError(`${host}: ${refused.message}`, 'refused', null, null, null, { cause: refused }));
      if (req.signal?.aborted) return reject(new UpstreamError('the request was aborted', 'aborted'));
      let settled = false;
      const method = req.method ?? 'GET';
      const headers: Record<string, string | number> = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
      if (target.basicAuth && headers.authorization === undefined) headers.authorization = target.basicAuth;
      const onResponse = (res: UpstreamAnswer) => {
        if (settled) return void res.destroy();
        settled = true;
        clearTimeout(timer);
        // From here the caller owns the answer: an abort destroys it (the caller sees 'aborted' on its stream).
        req.signal?.removeEventListener('abort', onAbort);
        if (req.signal) {
          const abortBody = () => res.destroy(new UpstreamError('the request was aborted', 'aborted'));
          req.signal.addEventListener('abort', abortBody, { once: true });
          res.once('close', () => req.signal?.removeEventListener('abort', abortBody));
        }
        resolve(res);
      };
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code ?? '';
        if (err.name === 'RefusedTarget') return fail(new UpstreamError(`${host}: ${err.message}`, 'refused', null, null, null, { cause: err }));
        // A kept-alive socket the server had just closed: the request never reached it. Once more, on a new socket.
        if (!settled && mayRetryStale && out.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
          settled = true;
          clearTimeout(timer);
          req.signal?.removeEventListener('abort', onAbort);
          return void this.attempt(req, false).then(resolve, reject);
        }
        const kind = CONNECT_CODES.has(code) ? 'connect' : 'invalid';
        fail(new UpstreamError(`${host}: ${code || err.message}`, kind, null, null, null, { cause: err }));
      };
      let out: { readonly reusedSocket: boolean; destroy(): void };
      if (target.http1) out = this.http1.request(target.http1, method, headers, req.body, { onResponse, onError });
      else {
        const sent = https.request({ ...target.options, method, headers, agent: this.httpsAgent });
        sent.on('response', onResponse);
        sent.on('error', onError);
        sent.end(req.body);
        out = sent;
      }
      const timer = setTimeout(() => fail(new UpstreamError(`no answer from ${host} within ${req.timeoutMs} ms`, 'timeout')), req.timeoutMs);
      const onAbort = () => fail(new UpstreamError('the request was aborted', 'aborted'));
      const fail = (err: UpstreamError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        out.destroy();
        reject(err);
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The URL taken apart, and the address guard's verdict on an IP literal in it (both depend on the URL alone). */
  private target(href: string): ParsedTarget {
    let t = this.targets.get(href);
    if (t) return t;
    const url = new URL(href);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamError(`${url.protocol} URLs are not supported: use http: or https:`, 'invalid');
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    // url.hostname keeps an IPv6 literal's brackets; a connection wants the bare address.
    const options: http.RequestOptions = { protocol: url.protocol, hostname: literal, path: url.pathname + url.search };
    if (url.port !== '') options.port = Number(url.port);
    const auth = url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : null;
    if (auth) options.auth = auth;
    const http1 = url.protocol === 'http:' ? { hostname: literal, port: url.port === '' ? 80 : Number(url.port), host: url.host, path: options.path! } : null;
    const basicAuth = http1 && auth ? `Basic ${Buffer.from(auth).toString('base64')}` : null;
    t = { host: url.host, options, http1, basicAuth, refused: (isIP(literal) ? this.options.refusal?.(literal) : null) ?? null };
    if (this.targets.size >= MAX_PARSED_TARGETS) this.targets.clear();
    this.targets.set(href, t);
    return t;
  }

  /** Reads a whole answer, failing (and dropping the connection) past `maxBytes`. */
  readCapped(res: UpstreamAnswer, maxBytes = this.options.maxResponseBytes, timeoutMs?: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const declared = Number(res.headers['content-length']);
      let settled = false;
      const timer = timeoutMs ? setTimeout(() => fail(new UpstreamError(`the answer did not complete within ${timeoutMs} ms`, 'timeout')), timeoutMs) : null;
      // The first failure is the one reported (destroying the answer makes it emit its own errors after).
      const fail = (err: UpstreamError) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        reject(err);
        res.destroy();
      };
      if (Number.isFinite(declared) && declared > maxBytes) return fail(tooLarge(maxBytes));
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) return fail(tooLarge(maxBytes));
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
      });
      res.on('error', (err) => fail(err instanceof UpstreamError ? err : new UpstreamError(`the answer broke off: ${err.message}`, 'invalid', res.statusCode ?? null, null, null, { cause: err })));
      res.on('aborted', () => fail(new UpstreamError('the answer broke off', 'invalid', res.statusCode ?? null)));
    });
  }

  /** A whole exchange with a JSON answer; a non-2xx answer becomes an UpstreamError with its error envelope. */
  async json<T>(req: UpstreamRequest): Promise<{ status: number; body: T }> {
    const { status, text } = await this.text(req);
    try {
      return { status, body: JSON.parse(text) as T };
    } catch {
      throw new UpstreamError(`${new URL(req.url).host} answered with a body that is not JSON`, 'invalid', status);
    }
  }

  /** A whole exchange with any 2xx body read as text (capped). */
  async text(req: UpstreamRequest): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    const started = Date.now();
    const res = await this.openOk(req, started);
    const body = (await this.readCapped(res, this.options.maxResponseBytes, timeLeft(req, started))).toString('utf8');
    return { status: res.statusCode ?? 0, headers: res.headers, text: body };
  }

  /**
   * `open` for a caller that wants a 2xx answer and reads its body itself (a download, a stream): any other answer
   * is read (capped, within what is left of the time limit) and thrown as its status error, with its error envelope.
   */
  async openOk(req: UpstreamRequest, started = Date.now()): Promise<UpstreamAnswer> {
    const res = await this.open(req);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const body = (await this.readCapped(res, this.options.maxResponseBytes, timeLeft(req, started))).toString('utf8');
    throw statusError(new URL(req.url).host, status, res.headers, body);
  }

  close(): void {
    this.http1.close();
    this.httpsAgent.destroy();
  }
}

/** What is left of a request's time limit (at least 1 ms: a read always gets a chance). */
const timeLeft = (req: UpstreamRequest, started: number) => Math.max(1, req.timeoutMs - (Date.now() - started));

const tooLarge = (max: number) => new UpstreamError(`the answer exceeded the limit of ${max} bytes and was cut off`, 'too_large');

/** OpenAI's envelope `{error: {message, type, param, code}}`, FastAPI's `{detail}`, or the start of other text. */
export function parseErrorEnvelope(text: string): ErrorEnvelope {
  try {
    const body = JSON.parse(text) as { error?: Partial<ErrorEnvelope> | string; detail?: unknown; message?: string };
    if (body.error && typeof body.error === 'object') {
      const e = body.error;
      return { message: String(e.message ?? 'error'), type: e.type ?? null, param: e.param ?? null, code: e.code ?? null };
    }
    const message = typeof body.error === 'string' ? body.error : typeof body.detail === 'string' ? body.detail : body.message;
    if (message) return { message: message.slice(0, 500), type: null, param: null, code: null };
  } catch {
    // not JSON (a proxy's HTML page, an internal service behind an allowed network): described, never echoed,
    // since this message can reach the tenant who chose the URL
  }
  return { message: `the answer is not an OpenAI error object (${Buffer.byteLength(text)} bytes)`, type: null, param: null, code: null };
}

export function statusError(host: string, status: number, headers: http.IncomingHttpHeaders, body: string): UpstreamError {
  const envelope = parseErrorEnvelope(body);
  return new UpstreamError(`${host} answered ${status}: ${envelope.message}`, 'status', status, envelope, retryAfterMs(headers));
}

/** The wait a 429/503 asks for, from `retry-after-ms` (OpenAI's) or `retry-after` (RFC 9110: seconds or a date). */
export function retryAfterMs(headers: http.IncomingHttpHeaders | Headers, now = Date.now()): number | null {
  const get = (name: string): string | null => {
    if (headers instanceof Headers) return headers.get(name);
    const v = headers[name];
    return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
  };
  const msText = get('retry-after-ms');
  const ms = Number(msText);
  if (msText !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const value = get('retry-after');
  if (value === null || value.trim() === '') return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * Server-sent events from a byte stream: yields each event's `data` (joined lines), with a cap on one event's size
 * (an upstream that never ends an event must not grow the buffer) and on the whole stream.
 */
export async function* sseData(body: AsyncIterable<Buffer>, limits: { maxEventBytes: number; maxTotalBytes: number }): AsyncGenerator<string> {
  let buffered = '';
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limits.maxTotalBytes) throw new UpstreamError(`the stream exceeded the limit of ${limits.maxTotalBytes} bytes and was cut off`, 'too_large');
    buffered += chunk.toString('utf8');
    let end: number;
    while ((end = eventEnd(buffered)) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l[5] === ' ' ? 6 : 5))
        .join('\n');
      if (data !== '') yield data;
    }
    if (buffered.length > limits.maxEventBytes) throw new UpstreamError(`one event of the stream exceeded ${limits.maxEventBytes} bytes`, 'too_large');
  }
}

/** Index where the first complete event ends (before its blank line), -1 when none is complete yet. */
export function eventEnd(text: string): number {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (lf < 0) return crlf;
  if (crlf < 0) return lf;
  return Math.min(lf, crlf);
}
