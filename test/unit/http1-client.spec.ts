import http from 'node:http';
import net from 'node:net';
import { Http1Answer, Http1Pool, Http1Target } from '../../src/serving/http1-client';
import { OpenAIHttp, UpstreamError } from '../../src/serving/openai-http';

/**
 * The HTTP/1.1 client of the gateway's hot path, against node:http servers (the common case: vLLM's uvicorn speaks
 * the same framing) and raw sockets that answer what real servers and broken proxies send: interim heads, close-
 * delimited bodies, bytes split anywhere, bytes too many, heads that are not HTTP, connections cut at every point.
 */
type Outcome = { answer: Http1Answer; body: string; reused: boolean };

const target = (port: number, path = '/'): Http1Target => ({ hostname: '127.0.0.1', port, host: `127.0.0.1:${port}`, path });

function exchange(pool: Http1Pool, port: number, path = '/', body?: string, headers: Record<string, string | number> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const h = body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) };
    const ex = pool.request(target(port, path), body === undefined ? 'GET' : 'POST', h, body, {
      onResponse: (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => resolve({ answer, body: Buffer.concat(parts).toString(), reused: ex.reusedSocket }));
        answer.on('error', reject);
      },
      onError: reject,
    });
  });
}

/** A server that writes `script(n)` (the n-th request on its connection, from 1) byte for byte as given. */
async function rawServer(script: (n: number, socket: net.Socket) => void): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let n = 0;
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      // One request per blank line (the requests sent to these servers have no body).
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        script(++n, socket);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Writes `text` one byte per TCP segment (noDelay, a tick between), so the parser meets every split. */
async function trickle(socket: net.Socket, text: string) {
  socket.setNoDelay(true);
  for (const byte of Buffer.from(text, 'latin1')) {
    socket.write(Buffer.of(byte));
    await new Promise((r) => setImmediate(r));
  }
}

describe('Http1Pool', () => {
  let pool: Http1Pool;
  beforeEach(() => {
    pool = new Http1Pool({ maxFreePerOrigin: 256 });
  });
  afterEach(() => pool.close());

  describe('against node:http', () => {
    let server: http.Server;
    let port: number;
    let connections = 0;
    let seen: http.IncomingMessage[] = [];
    /** Bytes the /large handler has written so far. */
    let largeSent = () => 0;
    beforeAll(async () => {
      server = http.createServer((req, res) => {
        seen.push(req);
        let text = '';
        req.on('data', (c) => (text += c));
        req.on('end', () => {
          if (req.url === '/chunked') {
            res.writeHead(200, { 'content-type': 'text/event-stream', trailer: 'x-done' });
            res.write('data: one\n\n');
            setTimeout(() => {
              res.write('data: two\n\n');
              res.addTrailers({ 'x-done': 'yes' });
              res.end('data: [DONE]\n\n');
            }, 20);
          } else if (req.url === '/empty') {
            res.writeHead(204).end();
          } else if (req.url === '/close') {
            res.writeHead(200, { connection: 'close', 'content-length': 3 }).end('bye');
          } else if (req.url === '/cut') {
            res.writeHead(200, { 'content-length': 100 });
            res.write('only part of it');
            setTimeout(() => res.socket?.destroy(), 20);
          } else if (req.url === '/large') {
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            let sent = 0;
            const piece = Buffer.alloc(64 * 1024, 'z');
            const pump = () => {
              while (sent < 32 * 1024 * 1024) {
                sent += piece.length;
                if (!res.write(piece)) return void res.once('drain', pump);
              }
              res.end();
            };
            largeSent = () => sent;
            pump();
          } else {
            res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] }).end(JSON.stringify({ echo: text, url: req.url }));
          }
        });
      });
      server.on('connection', () => connections++);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    beforeEach(() => {
      connections = 0;
      seen = [];
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it('sends the body with its length and reads a content-length answer; the next request reuses the connection', async () => {
      const first = await exchange(pool, port, '/v1/chat/completions?x=1', '{"model":"m","messages":[{"role":"user","content":"héllo"}]}', { 'content-type': 'application/json' });
      expect(first.answer.statusCode).toBe(200);
      expect(JSON.parse(first.body)).toEqual({ echo: '{"model":"m","messages":[{"role":"user","content":"héllo"}]}', url: '/v1/chat/completions?x=1' });
      expect(first.answer.headers['content-type']).toBe('application/json');
      expect(first.answer.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(first.reused).toBe(false);
      expect(seen[0].headers.host).toBe(`127.0.0.1:${port}`);
      expect(seen[0].headers['content-type']).toBe('application/json');
      const second = await exchange(pool, port, '/again', 'x');
      expect(second.reused).toBe(true);
      expect(JSON.parse(second.body).echo).toBe('x');
      expect(connections).toBe(1);
    });

    it('streams a chunked answer event by event and drops its trailers', async () => {
      const events: string[] = [];
      const done = new Promise<string>((resolve, reject) => {
        pool.request(target(port, '/chunked'), 'GET', {}, undefined, {
          onResponse: (answer) => {
            answer.on('data', (c: Buffer) => events.push(c.toString()));
            answer.on('end', () => resolve(events.join('')));
            answer.on('error', reject);
          },
          onError: reject,
        });
      });
      expect(await done).toBe('data: one\n\ndata: two\n\ndata: [DONE]\n\n');
      // The first event came before the rest was written (20 ms later): passed on as it arrived.
      expect(events[0]).toBe('data: one\n\n');
      expect((await exchange(pool, port, '/after')).reused).toBe(true);
      expect(connections).toBe(1);
    });

    it('reads a 204 without a body and keeps the connection', async () => {
      const empty = await exchange(pool, port, '/empty');
      expect([empty.answer.statusCode, empty.body]).toEqual([204, '']);
      expect((await exchange(pool, port, '/')).reused).toBe(true);
    });

    it('does not reuse a connection the server said it closes', async () => {
      expect((await exchange(pool, port, '/close')).body).toBe('bye');
      expect((await exchange(pool, port, '/')).reused).toBe(false);
      expect(connections).toBe(2);
    });

    it('fails the answer (ECONNRESET) when the connection is cut before its content-length is in', async () => {
      await expect(exchange(pool, port, '/cut')).rejects.toMatchObject({ code: 'ECONNRESET', message: expect.stringContaining('before the answer was complete') });
    });

    it('stops reading the socket while the consumer is paused (backpressure), and reads on when it resumes', async () => {
      const answer = await new Promise<Http1Answer>((resolve, reject) => pool.request(target(port, '/large'), 'GET', {}, undefined, { onResponse: resolve, onError: reject }));
      answer.pause();
      await new Promise((r) => setTimeout(r, 300));
      // Kernel buffers hold a few MiB at most; without backpressure all 32 MiB would be written by now.
      expect(largeSent()).toBeLessThan(16 * 1024 * 1024);
      let total = 0;
      answer.on('data', (c: Buffer) => (total += c.length));
      answer.resume();
      await new Promise((r) => answer.once('end', r));
      expect(total).toBe(32 * 1024 * 1024);
    });

    it('closes the connection of an answer destroyed before its end', async () => {
      const answer = await new Promise<Http1Answer>((resolve, reject) => pool.request(target(port, '/large'), 'GET', {}, undefined, { onResponse: resolve, onError: reject }));
      answer.destroy();
      expect((await exchange(pool, port, '/')).reused).toBe(false);
    });

    it('refuses a header value that would start another header, before anything is sent', () => {
      const cb = { onResponse: jest.fn(), onError: jest.fn() };
      expect(() => pool.request(target(port), 'GET', { 'x-key': 'a\r\nx-admin: 1' }, undefined, cb)).toThrow(/invalid character in the value of header x-key/);
      expect(() => pool.request(target(port), 'GET', { 'bad name': 'x' }, undefined, cb)).toThrow(/invalid header name/);
      expect(seen).toHaveLength(0);
    });
  });

  it('reports a refused connection with its code', async () => {
    const closed = await rawServer(() => undefined);
    const port = closed.port;
    await closed.close();
    await expect(exchange(pool, port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('parses an answer that arrives one byte per segment, interim 100 and 103 heads first', async () => {
    const server = await rawServer((_n, socket) => {
      void trickle(socket, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Thing:  spaced \r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n');
    });
    try {
      const out = await exchange(pool, server.port);
      expect([out.answer.statusCode, out.answer.statusMessage, out.body, out.answer.headers['x-thing']]).toEqual([200, 'OK', 'hello, world', 'spaced']);
      expect((await exchange(pool, server.port)).reused).toBe(true);
      expect(server.connections()).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('reads a body without length until the connection closes, and opens a new connection after', async () => {
    const server = await rawServer((_n, socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it'));
    try {
      expect((await exchange(pool, server.port)).body).toBe('all of it');
      expect((await exchange(pool, server.port)).reused).toBe(false);
      expect(server.connections()).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('does not reuse a connection that sent bytes after the end of an answer', async () => {
    const server = await rawServer((_n, socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n'));
    try {
      expect((await exchange(pool, server.port)).body).toBe('ok');
      expect((await exchange(pool, server.port)).reused).toBe(false);
    } finally {
      await server.close();
    }
  });

  it.each([
    ['a status line that is not HTTP/1.x', 'SSH-2.0-OpenSSH\r\n\r\n', /status line/],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n', /header line/],
    ['content-lengths that disagree', 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd', /content-length/],
    ['a negative content-length', 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', /content-length/],
    ['101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n', /101/],
  ])('fails the request on %s', async (_what, reply, message) => {
    const server = await rawServer((_n, socket) => socket.write(reply));
    try {
      await expect(exchange(pool, server.port)).rejects.toMatchObject({ code: 'HPE_INVALID', message: expect.stringMatching(message) });
    } finally {
      await server.close();
    }
  });

  it('fails the answer on a chunk size that is not hex, and on a chunk longer than its size', async () => {
    for (const reply of ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n']) {
      const server = await rawServer((_n, socket) => socket.write(reply));
      try {
        await expect(exchange(pool, server.port)).rejects.toMatchObject({ code: 'HPE_INVALID' });
      } finally {
        await server.close();
      }
    }
  });

  it('fails on a head that never ends instead of buffering it', async () => {
    const server = await rawServer((_n, socket) => socket.write(`HTTP/1.1 200 OK\r\nx-long: ${'a'.repeat(70 * 1024)}`));
    try {
      await expect(exchange(pool, server.port)).rejects.toMatchObject({ code: 'HPE_INVALID', message: expect.stringMatching(/within 65536 bytes/) });
    } finally {
      await server.close();
    }
  });

  it('forgets a free connection the server closed', async () => {
    const server = await rawServer((n, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      if (n === 1) setTimeout(() => socket.end(), 20);
    });
    try {
      await exchange(pool, server.port);
      await new Promise((r) => setTimeout(r, 100));
      const second = await exchange(pool, server.port);
      expect([second.body, second.reused]).toEqual(['ok', false]);
    } finally {
      await server.close();
    }
  });
});

describe('OpenAIHttp over http:', () => {
  it('tries once more on a new connection when a kept-alive one closes without an answer (stale keep-alive)', async () => {
    // The second request on each connection is met by a close, as a server does whose keep-alive timeout just ran out.
    const server = await rawServer((n, socket) => (n === 1 ? socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst') : socket.destroy()));
    const transport = new OpenAIHttp({ maxResponseBytes: 1024 });
    try {
      expect((await transport.text({ url: `http://127.0.0.1:${server.port}/a`, timeoutMs: 2000 })).text).toBe('first');
      expect((await transport.text({ url: `http://127.0.0.1:${server.port}/b`, timeoutMs: 2000 })).text).toBe('first');
      expect(server.connections()).toBe(2);
    } finally {
      transport.close();
      await server.close();
    }
  });

  it('does not try again when a new connection closes without an answer', async () => {
    const server = await rawServer((_n, socket) => socket.destroy());
    const transport = new OpenAIHttp({ maxResponseBytes: 1024 });
    try {
      await expect(transport.open({ url: `http://127.0.0.1:${server.port}/`, timeoutMs: 2000 })).rejects.toMatchObject({ kind: 'connect', message: expect.stringContaining('ECONNRESET') });
      expect(server.connections()).toBe(1);
    } finally {
      transport.close();
      await server.close();
    }
  });

  it('sends the URL credentials as basic auth, and times out a server that never answers', async () => {
    const heads: string[] = [];
    const server = await rawServer((n, socket) => {
      if (n === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    });
    const sniff = net.createServer((s) => s.once('data', (d) => (heads.push(d.toString()), s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'))));
    await new Promise<void>((r) => sniff.listen(0, '127.0.0.1', r));
    const transport = new OpenAIHttp({ maxResponseBytes: 1024 });
    try {
      await transport.text({ url: `http://us%40er:p%3Ass@127.0.0.1:${(sniff.address() as net.AddressInfo).port}/x`, timeoutMs: 2000 });
      expect(heads[0]).toContain(`authorization: Basic ${Buffer.from('us@er:p:ss').toString('base64')}\r\n`);
      await transport.text({ url: `http://127.0.0.1:${server.port}/`, timeoutMs: 2000 });
      const err = await transport.open({ url: `http://127.0.0.1:${server.port}/`, timeoutMs: 100 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err).toMatchObject({ kind: 'timeout' });
    } finally {
      transport.close();
      sniff.close();
      await server.close();
    }
  });
});
