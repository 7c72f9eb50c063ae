import http from 'node:http';
import net from 'node:net';
import { Readable, Transform } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { PrismaService } from '../../src/db/prisma.service';
import { ObjectStore } from '../../src/storage/object-store';
import { apiClient } from '../support/api-client';
import { startTestApp, TestApp, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';

/**
 * What a tenant can throw at the shared worker and the API through evals, on the real app: an eval target that
 * answers forever (as a stream and as one JSON body) is cut off at the configured caps, each item failing with a
 * clear message, while live memory stays bounded and another tenant's run completes meanwhile; and a suite larger
 * than EVAL_SUITE_MAX_ITEMS is refused while its items are still streaming, its dataset never held by the request.
 */
describe('evals: caps on what tenants control (e2e)', () => {
  jest.setTimeout(360_000);
  const STREAM_CAP = 4 * 1024 * 1024;
  const BODY_CAP = 1024 * 1024;
  const SUITE_CAP = 50;
  const ITEMS = 16;
  let app: TestApp;
  let prisma: PrismaService;
  let openai: OpenAIStandIn;
  let endless: http.Server;
  let endlessUrl: string;
  /** Per request to the endless target: bytes written until the worker hung up, and whether it did. */
  const served: { bytes: number; closed: boolean }[] = [];
  const api = apiClient(() => ({ url: app.url, key: app.apiKey }));

  /** Answers every chat completion forever: 64 KiB SSE events when asked to stream, else one JSON body that never ends. */
  function startEndless(): Promise<void> {
    const content = 'y'.repeat(64 * 1024);
    const event = Buffer.from(`data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`);
    const jsonChunk = Buffer.from(' '.repeat(64 * 1024));
    endless = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const stream = (JSON.parse(body) as { stream?: boolean }).stream === true;
        const record = { bytes: 0, closed: false };
        served.push(record);
        res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' });
        if (!stream) res.write('{"choices":[{"message":{"content":"');
        const chunk = stream ? event : jsonChunk;
        const pump = () => {
          while (!record.closed) {
            record.bytes += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        res.once('close', () => (record.closed = true));
        pump();
      });
    });
    return new Promise((resolve) => endless.listen(0, '127.0.0.1', () => {
      endlessUrl = `http://127.0.0.1:${(endless.address() as net.AddressInfo).port}/v1`;
      resolve();
    }));
  }

  async function uploadEval(name: string, lines: string[]) {
    const form = new FormData();
    form.append('file', new Blob([lines.join('\n')]), `${name}.jsonl`);
    const res = await fetch(`${app.url}/v1/datasets?format=eval&purpose=evals`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: form });
    const file = (await res.json()) as { id: string; status: string };
    expect(file.status).toBe('ready');
    return file.id;
  }

  beforeAll(async () => {
    await startEndless();
    openai = await startOpenAIStandIn({ apiKey: 'sk-standin-limits' });
    app = await startTestApp({
      UPSTREAM_MAX_STREAM_BYTES: String(STREAM_CAP),
      UPSTREAM_MAX_RESPONSE_BYTES: String(BODY_CAP),
      EVAL_SUITE_MAX_ITEMS: String(SUITE_CAP),
      EVAL_RETRY_BASE_MS: '50',
    });
    prisma = app.started.app.get(PrismaService);
  });
  afterAll(async () => {
    await app?.close();
    await openai?.close();
    endless?.closeAllConnections();
    await new Promise((r) => endless?.close(r));
  });

  const finished = (id: string) =>
    waitFor(`run ${id} to finish`, async () => {
      const r = (await api('GET', `/evals/runs/${id}`)).body;
      return r.status === 'queued' || r.status === 'running' ? null : r;
    }, 300_000, 100);

  it('cuts an endless target off at the caps, item by item, with memory bounded, while another run completes', async () => {
    const dataset = await uploadEval('limits-items', Array.from({ length: ITEMS }, (_, i) => JSON.stringify({ prompt: `q${i}`, reference: 'ok' })));
    expect((await api('POST', '/evals/suites', { name: 'limits', dataset_id: dataset, scorer: 'exact_match' })).status).toBe(201);
    const target = (name: string, body: object) => api('POST', '/evals/targets', { name, kind: 'api', api_key: 'sk-x', model: 'gpt-4o-mini', concurrency: 2, ...body });
    for (const [name, body] of [['endless-sse', { base_url: endlessUrl, stream: true }], ['endless-json', { base_url: endlessUrl }], ['honest', { base_url: openai.url, api_key: 'sk-standin-limits' }]] as const) {
      expect((await target(name, body)).status).toBe(201);
    }

    // Live memory, not garbage: collect before each sample, all through the run.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const before = live();
    let peak = before;
    // Every 2 s: a forced full GC of jest's heap is not cheap (under a loaded machine's full suite, sampling once a
    // second made this test take minutes), and a worker that kept the answers would only grow, so a sample finds it.
    const sampler = setInterval(() => (peak = Math.max(peak, live())), 2000);
    try {
      const attacked = await api('POST', '/evals/runs', { suite_id: 'limits', targets: ['endless-sse', 'endless-json'] });
      const other = await api('POST', '/evals/runs', { suite_id: 'limits', targets: ['honest'] });
      expect([attacked.status, other.status]).toEqual([201, 201]);
      const [a, b] = await Promise.all([finished(attacked.body.id), finished(other.body.id)]);

      // The other run was not held up: it finished, every item right, before the attacked one did.
      expect(b).toMatchObject({ status: 'succeeded', progress: { done: ITEMS, targets: [{ target: 'honest', correct: ITEMS, errors: 0 }] } });
      const ends = await prisma.evalRun.findMany({ where: { id: { in: [a.id, b.id] } }, select: { id: true, finishedAt: true } });
      const at = new Map(ends.map((r) => [r.id, r.finishedAt!.getTime()]));
      expect(at.get(b.id)!).toBeLessThan(at.get(a.id)!);

      // Each item of the endless targets failed on its own with the cap named, and was not retried.
      expect(a).toMatchObject({ status: 'succeeded', progress: { done: 2 * ITEMS, targets: [{ errors: ITEMS }, { errors: ITEMS }] } });
      const results = (await api('GET', `/evals/runs/${a.id}/results?limit=500`)).body.data as { target: string; error: string | null; attempts: number }[];
      const byTarget = (t: string) => results.filter((r) => r.target === t);
      for (const r of byTarget('endless-sse')) expect(r.error).toMatch(`the stream exceeded the limit of ${STREAM_CAP} bytes and was cut off`);
      for (const r of byTarget('endless-json')) expect(r.error).toMatch(`the answer exceeded the limit of ${BODY_CAP} bytes and was cut off`);
      expect(results.every((r) => r.attempts === 1)).toBe(true);
    } finally {
      clearInterval(sampler);
      peak = Math.max(peak, live());
    }
    // Every endless answer was hung up on, a socket buffer or two past its cap; the worker never read on.
    await waitFor('every endless answer to be hung up on', async () => served.every((s) => s.closed), 5000, 50);
    expect(served).toHaveLength(2 * ITEMS);
    for (const s of served) expect(s.bytes).toBeLessThan(STREAM_CAP + 16 * 1024 * 1024);
    // 16 x 4 MiB went through the stream path alone; live memory grew by at most half of that at any time (what a
    // worker that kept the answers would exceed).
    expect(served.reduce((n, s) => n + s.bytes, 0)).toBeGreaterThan(ITEMS * STREAM_CAP);
    expect(peak - before).toBeLessThan((ITEMS * STREAM_CAP) / 2);
  });

  it('refuses a suite over EVAL_SUITE_MAX_ITEMS while streaming its items, reading only the start of the dataset', async () => {
    const n = 4000;
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `question ${i}: ${'z'.repeat(1000)}`, reference: 'ok' }));
    const size = lines.join('\n').length;
    const dataset = await uploadEval('limits-large', lines);
    // What the request pulls out of the store: counted as the bytes pass, the store's stream closed with ours.
    const store = app.started.app.get(ObjectStore);
    const realGet = store.get.bind(store);
    let pulled = 0;
    const spy = jest.spyOn(store, 'get').mockImplementation(async (key: string) => {
      const body = (await realGet(key)) as Readable | null;
      if (!body) return body;
      const counted = new Transform({ transform: (chunk: Buffer, _e, done) => ((pulled += chunk.length), done(null, chunk)) });
      counted.once('close', () => body.destroy());
      return body.pipe(counted);
    });
    try {
      const res = await api('POST', '/evals/suites', { name: 'limits-large', dataset_id: dataset, scorer: 'exact_match' });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', param: 'dataset_id' });
      expect(res.body.error.message).toBe(`File ${dataset} has more than ${SUITE_CAP} items, the most a suite may hold (EVAL_SUITE_MAX_ITEMS)`);
    } finally {
      spy.mockRestore();
    }
    expect(pulled).toBeGreaterThan(SUITE_CAP * 1000);
    expect(pulled).toBeLessThan(size / 8);
    expect(await api('GET', '/evals/suites/limits-large')).toMatchObject({ status: 404 });
  });
});
