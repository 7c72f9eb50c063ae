import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * bench:gateway's load (scripts/lib/wrk-load.mjs: wrk with a generated Lua script), run as the bench runs it against
 * node http servers: a figure it printed would be wrong if the request it sent, the count or the CPU it read were.
 */
const TOOL = path.resolve(__dirname, '../../scripts/lib/wrk-load.mjs');

/** Calls one of the tool's exports in a node process of its own (the tool is an ES module; jest runs CommonJS). */
function call(code: string): Promise<{ code: number | null; out: string; err: string }> {
  const script = `import * as tool from ${JSON.stringify(TOOL)};\n${code}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve) => child.on('exit', (exit) => resolve({ code: exit, out, err })));
}

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/chat/completions?x=1`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('bench:gateway load (wrk)', () => {
  beforeAll(async () => {
    // The bench installs wrk with apt-get where it is missing; so does this test, as the test stack does its tools.
    const installed = await call('await tool.ensureWrk((line) => console.error(line));');
    expect(installed).toMatchObject({ code: 0 });
  }, 300_000);

  it('sends the body and headers given, and counts no more answers than the server gave', async () => {
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'ünïcode ]] and ]=] brackets' }] });
    const seen = new Set<string>();
    let answered = 0;
    const server = await serve((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        seen.add(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers['content-type']} ${text}`);
        answered++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    try {
      const run = await call(`console.log(JSON.stringify(await tool.wrkLoad({ url: ${JSON.stringify(server.url)}, headers: { authorization: 'Bearer k]]e=y' }, body: ${JSON.stringify(body)}, concurrency: 4, seconds: 1 })));`);
      expect(run).toMatchObject({ code: 0 });
      const result = JSON.parse(run.out) as { rps: number; p50: number; requests: number; cpuUs: number };
      expect([...seen]).toEqual([`POST /v1/chat/completions?x=1 Bearer k]]e=y application/json ${body}`]);
      // A load, not a handful of requests; a busy CI machine gave as few as 76 in the second (hundreds when idle).
      expect(result.requests).toBeGreaterThan(20);
      // Requests still in flight when wrk stops may be answered but not counted; never the other way round.
      expect(result.requests).toBeLessThanOrEqual(answered);
      expect(answered - result.requests).toBeLessThanOrEqual(4);
      expect(result.rps).toBeGreaterThan(result.requests / 1.5);
      expect(result.p50).toBeGreaterThan(0);
      expect(result.cpuUs).toBeGreaterThan(0);
      expect(result.cpuUs).toBeLessThan(5000);
    } finally {
      await server.close();
    }
  });

  it('fails, naming the count, when the server answers with errors', async () => {
    const server = await serve((_req, res) => res.writeHead(500).end('no'));
    try {
      const run = await call(`await tool.wrkLoad({ url: ${JSON.stringify(server.url)}, headers: {}, body: '{}', concurrency: 2, seconds: 1 });`);
      expect(run.code).not.toBe(0);
      expect(run.err).toMatch(/wrk against http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions\?x=1: \d+ status errors in \d+ requests/);
    } finally {
      await server.close();
    }
  });

  it('reads wrk\'s summary line and the CPU from bash\'s times', async () => {
    const out = 'Running 2s test\nWRK-SUMMARY 9023 2006378 18534 0 0 1 0 0\n0m0.002s 0m0.000s\n1m0.043s 0m0.247s\n';
    const run = await call(`console.log(JSON.stringify(tool.parseWrkOutput(${JSON.stringify(out)})));`);
    expect(JSON.parse(run.out)).toEqual({ requests: 9023, durationUs: 2006378, p50Us: 18534, errors: { status: 0, connect: 0, read: 1, write: 0, timeout: 0 }, cpuSeconds: 60.29 });
  });
});
