import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * The benches' load generator (scripts/lib/http-load.mjs), run as the benches run it (its own process) against node
 * http servers: a figure it printed would be wrong if it lost, doubled or misframed answers.
 */
const TOOL = path.resolve(__dirname, '../../scripts/lib/http-load.mjs');

function run(options: object): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [TOOL, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/chat/completions?x=1`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('the benches load generator', () => {
  it('sends exactly the requests asked for, with the body and headers given, and times every answer', async () => {
    const bodies: string[] = [];
    const seen = new Set<string>();
    const server = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        bodies.push(body);
        seen.add(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers['content-type']}`);
        // Answers of both framings: content-length, and chunked in two pieces.
        if (bodies.length % 2) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        else {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"ok":');
          setImmediate(() => res.end('true}'));
        }
      });
    });
    try {
      const result = await run({ url: server.url, headers: { authorization: 'Bearer k' }, body: '{"model":"m","messages":[{"role":"user","content":"héllo"}]}', concurrency: 8, total: 301 });
      expect(result.err).toBe('');
      expect(result.code).toBe(0);
      const figures = JSON.parse(result.out) as { rps: number; p50: number; cpuUs: number };
      expect(bodies).toHaveLength(301);
      expect(new Set(bodies)).toEqual(new Set(['{"model":"m","messages":[{"role":"user","content":"héllo"}]}']));
      expect([...seen]).toEqual(['POST /v1/chat/completions?x=1 Bearer k application/json']);
      expect(figures.rps).toBeGreaterThan(0);
      expect(figures.p50).toBeGreaterThan(0);
      expect(figures.cpuUs).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });

  it('fails, naming the status and the body, when an answer is not 200', async () => {
    let n = 0;
    const server = await serve((req, res) => {
      req.resume();
      req.on('end', () => (++n === 5 ? res.writeHead(429).end('{"error":{"message":"slow down"}}') : res.writeHead(200).end('{}')));
    });
    try {
      const result = await run({ url: server.url, body: '{}', concurrency: 2, total: 50 });
      expect(result.code).toBe(1);
      expect(result.err).toContain('answered 429: {"error":{"message":"slow down"}}');
    } finally {
      await server.close();
    }
  });

  it('fails when the server closes a connection under a request', async () => {
    let n = 0;
    const server = await serve((req, res) => {
      req.resume();
      req.on('end', () => (++n === 3 ? res.socket?.destroy() : res.writeHead(200).end('{}')));
    });
    try {
      const result = await run({ url: server.url, body: '{}', concurrency: 1, total: 10 });
      expect(result.code).toBe(1);
      expect(result.err).toContain('closed the connection before answering');
    } finally {
      await server.close();
    }
  });
});
