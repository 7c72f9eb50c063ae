import net, { type LookupFunction } from 'node:net';
import { Http1Callbacks, Http1Exchange, Http1Link, TOKEN } from './http1-answer';

export { Http1Answer } from './http1-answer';

/**
 * A keep-alive HTTP/1.1 client for plain-http upstreams: the vLLM replicas, the tiny server and the adapter agents
 * that the gateway calls for every inference request (OpenAIHttp uses it for `http:` URLs; `https:` stays on
 * node:https).
 *
 * Why not node:http's client: in a bare relay on this machine (node:http server in front, canned upstream behind)
 * node:http's ClientRequest and Agent cost 50-60 us of the 85-110 us of CPU per relayed request; this client, one
 * write per request and a parser that does only what framing needs, brings the relay to 35-50 us. The gateway pays
 * that on every request, so it is most of what a gateway adds.
 *
 * What it speaks: one request at a time per connection (no pipelining), its body of known length; answers framed by
 * content-length, chunked transfer-encoding (trailers read and dropped) or the connection's close; 1xx interim
 * answers skipped. A connection is kept for the next request unless either side said `connection: close`, the
 * answer was close-delimited, or anything about it was off; free connections are unref'd and dropped when the server
 * closes them. Errors carry node's codes (ECONNREFUSED, ECONNRESET for a connection closed before a whole answer),
 * so callers treat them as they treat node:http's.
 */

/** Where a request goes, taken apart once by the caller. */
export interface Http1Target {
  hostname: string;
  port: number;
  /** The Host header, host[:port] as the URL had it; also the pool's key for the origin. */
  host: string;
  /** Path and query, already percent-encoded (URL.pathname + URL.search). */
  path: string;
}

/** The request head as one string (ASCII: URLs are percent-encoded and hosts punycoded by URL). */
function requestHead(method: string, target: Http1Target, headers: Record<string, string | number>): string {
  let head = `${method} ${target.path} HTTP/1.1\r\nhost: ${target.host}\r\n`;
  for (const name in headers) {
    const value = String(headers[name]);
    if (!TOKEN.test(name)) throw Object.assign(new TypeError(`invalid header name ${JSON.stringify(name)}`), { code: 'ERR_INVALID_HTTP_TOKEN' });
    // A CR or LF in a value would start a header (or a request) of its own.
    if (/[\r\n\0]/.test(value)) throw Object.assign(new TypeError(`invalid character in the value of header ${name}`), { code: 'ERR_INVALID_CHAR' });
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/** One connection to one origin: carries one exchange at a time, parses its answer, goes back to the pool. */
class Http1Connection implements Http1Link {
  readonly socket: net.Socket;
  exchange: Http1Exchange | null = null;
  used = false;

  constructor(
    readonly pool: Http1Pool,
    readonly key: string,
    target: Http1Target,
    lookup: LookupFunction | undefined,
  ) {
    this.socket = net.connect({ host: target.hostname, port: target.port, lookup, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => {
      if (this.exchange) this.exchange.receive(chunk);
      // Bytes nobody asked for: the connection is out of step.
      else this.socket.destroy();
    });
    this.socket.on('end', () => this.exchange?.closed(null));
    this.socket.on('error', (err) => this.exchange?.closed(err));
    this.socket.on('close', () => {
      this.pool.forget(this);
      this.exchange?.closed(null);
    });
  }

  release(): void {
    this.pool.release(this);
  }
}

/** Free connections per origin, the most recently used first (LIFO keeps few of them warm). */
export class Http1Pool {
  private readonly free = new Map<string, Http1Connection[]>();

  constructor(private readonly options: { lookup?: LookupFunction; maxFreePerOrigin: number }) {}

  /**
   * Sends a request with `body` (its content-length among `headers`, set by the caller) and reports the answer's
   * head, or a failure before it, through `callbacks`. Throws at once for a header that could not be sent safely.
   */
  request(target: Http1Target, method: string, headers: Record<string, string | number>, body: string | Buffer | undefined, callbacks: Http1Callbacks): Http1Exchange {
    const head = requestHead(method, target, headers);
    const conn = this.takeFree(target.host) ?? new Http1Connection(this, target.host, target, this.options.lookup);
    conn.socket.ref();
    const exchange = new Http1Exchange(conn, method, callbacks);
    conn.exchange = exchange;
    if (body === undefined || typeof body === 'string') conn.socket.write(body === undefined ? head : head + body);
    else {
      conn.socket.cork();
      conn.socket.write(head);
      conn.socket.write(body);
      conn.socket.uncork();
    }
    return exchange;
  }

  private takeFree(key: string): Http1Connection | undefined {
    const list = this.free.get(key);
    let conn: Http1Connection | undefined;
    // One destroyed a moment ago may not have said 'close' yet.
    while ((conn = list?.pop()) && conn.socket.destroyed);
    return conn;
  }

  release(conn: Http1Connection): void {
    const list = this.free.get(conn.key) ?? [];
    if (conn.socket.destroyed || list.length >= this.options.maxFreePerOrigin) return void conn.socket.destroy();
    // A free connection does not keep the process alive, and is read (paused by backpressure on its last answer,
    // it would not notice the server closing it).
    conn.socket.unref();
    conn.socket.resume();
    list.push(conn);
    this.free.set(conn.key, list);
  }

  forget(conn: Http1Connection): void {
    const list = this.free.get(conn.key);
    const i = list?.indexOf(conn) ?? -1;
    if (i >= 0) list!.splice(i, 1);
  }

  /** Closes every free connection (those in use close when their exchange ends or is destroyed). */
  close(): void {
    for (const list of this.free.values()) for (const conn of list.splice(0)) conn.socket.destroy();
    this.free.clear();
  }
}
