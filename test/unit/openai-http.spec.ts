import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import net from 'node:net';
import { OpenAIHttp, sseData, UpstreamError } from '../../src/serving/openai-http';

/**
 * The shared transport against servers that misbehave the way a tenant-controlled upstream can: an endless answer,
 * an endless stream, an error envelope, a refused connection. Every read is capped and memory stays bounded.
 */
describe('OpenAIHttp', () => {
  let server: http.Server;
  let base: string;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const event = Buffer.from(`data: ${JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(4000) } }] })}\n\n`);

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/endless') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const pump = () => {
          while (res.write(chunk));
          res.once('drain', pump);
        };
        pump();
        res.once('close', () => res.removeAllListeners('drain'));
        return;
      }
      if (req.url === '/endless-stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const pump = () => {
          while (res.write(event));
          res.once('drain', pump);
        };
        pump();
        return;
      }
      if (req.url === '/no-event-end') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const pump = () => {
          while (res.write('data: aaaaaaaaaaaaaaaaaaaaaaaa'));
          res.once('drain', pump);
        };
        pump();
        return;
      }
      if (req.url === '/error') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' });
        res.end(JSON.stringify({ error: { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const transport = new OpenAIHttp({ maxResponseBytes: 1024 * 1024 });
  afterAll(() => transport.close());

  it('reads a JSON answer and keeps the connection for the next call', async () => {
    expect((await transport.json({ url: `${base}/ok`, timeoutMs: 2000 })).body).toEqual({ ok: true });
    expect((await transport.json({ url: `${base}/ok`, timeoutMs: 2000 })).body).toEqual({ ok: true });
  });

  it('fails an answer over the cap with a clear message instead of reading on', async () => {
    const err = await transport.json({ url: `${base}/endless`, timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ kind: 'too_large', message: 'the answer exceeded the limit of 1048576 bytes and was cut off' });
  });

  it('cuts off an endless stream at its byte limit with memory bounded', async () => {
    const limit = 64 * 1024 * 1024;
    // Live memory, not garbage: collect before each sample.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    let peak = before;
    let events = 0;
    const res = await transport.open({ url: `${base}/endless-stream`, timeoutMs: 5000 });
    const err = await (async () => {
      for await (const data of sseData(res, { maxEventBytes: 64 * 1024, maxTotalBytes: limit })) {
        expect(data.length).toBeGreaterThan(4000);
        if (++events % 1000 === 0) {
          gc();
          const m = process.memoryUsage();
          peak = Math.max(peak, m.heapUsed + m.arrayBuffers);
        }
      }
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'too_large', message: `the stream exceeded the limit of ${limit} bytes and was cut off` });
    // 64 MiB went through; what this process held at any time stayed a small fraction of it.
    expect(events * event.length).toBeGreaterThan(limit * 0.9);
    expect(peak - before).toBeLessThan(8 * 1024 * 1024);
  });

  it('fails a stream whose one event never ends', async () => {
    const res = await transport.open({ url: `${base}/no-event-end`, timeoutMs: 5000 });
    const err = await (async () => {
      for await (const _ of sseData(res, { maxEventBytes: 256 * 1024, maxTotalBytes: 1e9 })) void _;
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'too_large', message: 'one event of the stream exceeded 262144 bytes' });
  });

  it("parses an upstream's error envelope and Retry-After", async () => {
    const err = await transport.json({ url: `${base}/error`, timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'status', status: 429, retryAfterMs: 3000, envelope: { message: 'slow down', type: 'requests', code: 'rate_limit_exceeded', param: null } });
  });

  it('reports a refused connection as a connect failure (safe to try elsewhere)', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await expect(transport.open({ url: `http://127.0.0.1:${port}/x`, timeoutMs: 2000 })).rejects.toMatchObject({ kind: 'connect' });
  });
});
