import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

/**
 * The answer side of the HTTP/1.1 client (./http1-client.ts): one exchange's parser, from the status line to the
 * end of the body, and the Readable the caller reads the body from.
 */

/** What an exchange needs of its connection (Http1Connection in ./http1-client.ts). */
export interface Http1Link {
  readonly socket: Socket;
  exchange: Http1Exchange | null;
  /** The connection carried an earlier exchange (a failure before any answer may then be a stale keep-alive). */
  used: boolean;
  /** The whole answer is in and the connection can carry another request: back to the pool. */
  release(): void;
}

/** An answer whose head is in: status and headers (names lower-cased, as node:http gives them); the body streams. */
export class Http1Answer extends Readable {
  statusCode = 0;
  statusMessage = '';
  headers: IncomingHttpHeaders = {};

  constructor(private readonly exchange: Http1Exchange) {
    super();
  }

  override _read(): void {
    this.exchange.resumeReading();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before its end (a cap, a timeout, the caller's abort): the rest of the body is never read, so the
    // connection cannot carry another request.
    this.exchange.answerDestroyed();
    callback(err);
  }
}

export interface Http1Callbacks {
  onResponse(answer: Http1Answer): void;
  /** The request failed before its answer's head was in (the error has node's `code` where there is one). */
  onError(err: NodeJS.ErrnoException): void;
}

/** The most a response head may take (node:http's default limit is 16 KiB). */
const MAX_HEAD_BYTES = 64 * 1024;
/** The most a chunk-size line or one trailer line may take. */
const MAX_LINE_BYTES = 4 * 1024;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
/** An HTTP token (RFC 9110 section 5.6.2): a header name, received here and sent by ./http1-client.ts. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/** The parts of one answer, in the order they arrive. */
type Phase = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done';

function protocolError(message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`the upstream's answer is not valid HTTP/1.1: ${message}`), { code: 'HPE_INVALID' });
}

function hangUp(message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

/** One request and its answer on one connection. */
export class Http1Exchange {
  private answer: Http1Answer | null = null;
  private phase: Phase = 'head';
  /** Bytes of a head or a line not complete yet. */
  private pending: Buffer | null = null;
  private remaining = 0;
  private keepAlive = false;
  private over = false;
  /** Whether the request went out on a connection an earlier request had used. */
  readonly reusedSocket: boolean;

  constructor(
    private readonly conn: Http1Link,
    private readonly method: string,
    private readonly callbacks: Http1Callbacks,
  ) {
    this.reusedSocket = conn.used;
  }

  /** Stops the exchange where it is (a timeout, an abort): the connection is closed, never reused. */
  destroy(): void {
    if (this.over) return;
    this.over = true;
    this.conn.socket.destroy();
    if (this.answer && !this.answer.destroyed && this.phase !== 'done') this.answer.destroy(hangUp('the request was destroyed'));
  }

  resumeReading(): void {
    if (!this.over) this.conn.socket.resume();
  }

  answerDestroyed(): void {
    if (this.phase !== 'done') this.destroy();
  }

  receive(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.over) at = this.step(chunk, at);
    if (this.phase !== 'done' || !this.over) return;
    // The whole answer is in. Bytes after it mean the connection is out of step with the server: not reused.
    if (this.keepAlive && at === chunk.length) this.conn.release();
    else this.conn.socket.destroy();
  }

  /** The connection ended (err null: closed by the server, or destroyed here). */
  closed(err: Error | null): void {
    if (this.over) return;
    // A close-delimited body ends with its connection.
    if (this.phase === 'until-close' && !err) return this.finish();
    // Closed before any answer: node:http's words and code, which callers take for a stale keep-alive connection.
    if (this.answer === null) return this.fail(err ?? hangUp('socket hang up'));
    this.fail(err ?? hangUp('the connection closed before the answer was complete'));
  }

  /** Consumes what it can of `chunk` from `at` in the current phase; returns where it stopped. */
  private step(chunk: Buffer, at: number): number {
    switch (this.phase) {
      case 'head':
        return this.readHead(chunk, at);
      case 'length':
      case 'chunk-data': {
        // Up to `remaining` bytes of body: the whole answer (length) or one chunk (chunk-data).
        const n = Math.min(this.remaining, chunk.length - at);
        this.remaining -= n;
        this.body(chunk.subarray(at, at + n));
        if (this.remaining === 0) {
          if (this.phase === 'length') this.finish();
          else this.phase = 'chunk-end';
        }
        return at + n;
      }
      case 'chunk-size':
      case 'chunk-end':
      case 'trailers':
        return this.readLine(chunk, at);
      case 'until-close':
        this.body(chunk.subarray(at));
        return chunk.length;
      default:
        return chunk.length;
    }
  }

  /** Joins `chunk` from `at` to what is pending and finds `delimiter`; null: not all there yet (kept pending). */
  private take(chunk: Buffer, at: number, delimiter: Buffer, max: number): { data: Buffer; next: number } | null {
    const rest = chunk.subarray(at);
    const buf = this.pending ? Buffer.concat([this.pending, rest]) : rest;
    const end = buf.indexOf(delimiter);
    if (end < 0) {
      if (buf.length > max) {
        this.fail(protocolError(`no end of ${this.phase === 'head' ? 'the head' : 'a line'} within ${max} bytes`));
        return null;
      }
      this.pending = Buffer.from(buf);
      return null;
    }
    const pendingLength = this.pending?.length ?? 0;
    this.pending = null;
    // Where the delimiter ends, counted in `chunk`.
    return { data: buf.subarray(0, end), next: at + end + delimiter.length - pendingLength };
  }

  private readHead(chunk: Buffer, at: number): number {
    const got = this.take(chunk, at, HEAD_END, MAX_HEAD_BYTES);
    if (!got) return chunk.length;
    const lines = got.data.toString('latin1').split('\r\n');
    const status = STATUS_LINE.exec(lines[0]);
    if (!status) {
      this.fail(protocolError(`status line ${JSON.stringify(lines[0].slice(0, 80))}`));
      return chunk.length;
    }
    const code = Number(status[2]);
    const headers: IncomingHttpHeaders = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name)) {
        this.fail(protocolError(`header line ${JSON.stringify(line.slice(0, 80))}`));
        return chunk.length;
      }
      const key = name.toLowerCase();
      const value = line.slice(colon + 1).trim();
      const seen = headers[key];
      if (key === 'set-cookie') headers[key] = [...((seen as string[] | undefined) ?? []), value];
      else headers[key] = seen === undefined ? value : `${seen as string}, ${value}`;
    }
    if (code >= 100 && code < 200) {
      // 100 Continue, 103 Early Hints: an interim head, the real one follows. 101 would switch protocols: never asked.
      if (code === 101) this.fail(protocolError('101 Switching Protocols was not asked for'));
      return got.next;
    }
    if (!this.frame(code, headers, status[1] === '1')) return chunk.length;
    const answer = new Http1Answer(this);
    answer.statusCode = code;
    answer.statusMessage = status[3] ?? '';
    answer.headers = headers;
    this.answer = answer;
    this.callbacks.onResponse(answer);
    if (this.phase === 'done') this.finish();
    return got.next;
  }

  /** Chooses how the body is framed (RFC 9112 section 6.3); false when the head does not allow a sound answer. */
  private frame(code: number, headers: IncomingHttpHeaders, http11: boolean): boolean {
    const connection = String(headers.connection ?? '').toLowerCase();
    this.keepAlive = http11 && !/(?:^|,)\s*close\s*(?:,|$)/.test(connection);
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (this.method === 'HEAD' || code === 204 || code === 304) {
      this.phase = 'done';
    } else if (te !== undefined) {
      // Transfer-encoding overrides content-length; an answer with both is not trusted with the connection after.
      if (cl !== undefined) this.keepAlive = false;
      if (/(?:^|,)\s*chunked\s*$/i.test(te)) this.phase = 'chunk-size';
      else {
        this.phase = 'until-close';
        this.keepAlive = false;
      }
    } else if (cl !== undefined) {
      // Repeated content-length headers (joined with ", ") must agree.
      const values = new Set(String(cl).split(',').map((v) => v.trim()));
      const [value] = values;
      if (values.size !== 1 || !/^\d{1,15}$/.test(value)) {
        this.fail(protocolError(`content-length ${JSON.stringify(String(cl).slice(0, 40))}`));
        return false;
      }
      this.remaining = Number(value);
      this.phase = this.remaining === 0 ? 'done' : 'length';
    } else {
      this.phase = 'until-close';
      this.keepAlive = false;
    }
    return true;
  }

  private readLine(chunk: Buffer, at: number): number {
    const got = this.take(chunk, at, CRLF, MAX_LINE_BYTES);
    if (!got) return chunk.length;
    const line = got.data.toString('latin1');
    if (this.phase === 'chunk-size') {
      // The size in hex, then optional extensions after ';' (ignored).
      const hex = line.split(';')[0].trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
        this.fail(protocolError(`chunk size ${JSON.stringify(line.slice(0, 40))}`));
        return chunk.length;
      }
      this.remaining = parseInt(hex, 16);
      this.phase = this.remaining === 0 ? 'trailers' : 'chunk-data';
    } else if (this.phase === 'chunk-end') {
      if (line !== '') {
        this.fail(protocolError('a chunk longer than its size'));
        return chunk.length;
      }
      this.phase = 'chunk-size';
    } else if (line === '') {
      // The blank line after the trailers (if any) ends the answer.
      this.finish();
    }
    return got.next;
  }

  private body(bytes: Buffer): void {
    if (bytes.length === 0 || !this.answer || this.answer.destroyed) return;
    // Backpressure: the socket stops being read while the consumer's buffer is full; _read resumes it.
    if (!this.answer.push(bytes)) this.conn.socket.pause();
  }

  /**
   * The whole answer is in: `receive` then gives the connection back to the pool or closes it (after a close-delimited
   * body it is closed already).
   */
  private finish(): void {
    this.phase = 'done';
    this.over = true;
    this.conn.exchange = null;
    this.conn.used = true;
    this.answer?.push(null);
  }

  private fail(err: NodeJS.ErrnoException): void {
    if (this.over) return;
    this.over = true;
    this.conn.exchange = null;
    this.conn.socket.destroy();
    if (this.answer) this.answer.destroy(err);
    else this.callbacks.onError(err);
  }
}
