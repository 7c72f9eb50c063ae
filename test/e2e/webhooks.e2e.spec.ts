import http from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AddressInfo } from 'node:net';
import OpenAI, { toFile } from 'openai';
import { PrismaService } from '../../src/db/prisma.service';
import { recordWebhook } from '../../src/webhooks/webhook-outbox';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { startTestApp, TestApp, waitFor } from '../support/app';

/** Every log line the apps write, in memory (see test/unit/logging.spec.ts for the technique). */
const mockLogLines: string[] = [];
jest.mock('pino', () => {
  const actual = jest.requireActual('pino');
  const withCapture = (options: object) => actual(options, { write: (line: string) => mockLogLines.push(line) });
  return Object.assign(withCapture, actual, { default: withCapture, pino: withCapture });
});

interface Received {
  path: string;
  id: string;
  timestamp: number;
  signature: string;
  body: string;
  event: { type: string; timestamp: string; data: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Verifies a Standard Webhooks signature with its own code (not loraplane's), as a receiver would. */
function verify(secret: string, r: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${r.id}.${r.timestamp}.${r.body}`).digest();
  return r.signature.split(' ').some((s) => {
    const [version, sig] = s.split(',');
    const got = Buffer.from(sig ?? '', 'base64');
    return version === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

/**
 * Webhooks end to end: a receiver on 127.0.0.1 checks every signature; a real tiny-lora job, a cancelled job and an
 * alias rollout through the serving API each produce their event, a failing receiver is retried with the same
 * webhook-id, 410 disables an endpoint, private targets are refused when not allowed, and tenants stay apart.
 */
describe('signed webhooks (e2e)', () => {
  jest.setTimeout(60_000);
  let app: TestApp;
  let client: OpenAI;
  let key: string;
  let otherKey: string;
  let keyId: string;
  let projectId: string;
  let receiver: http.Server;
  let base: string;
  const received: Received[] = [];
  /** The text of every GET answer. */
  const getResponses: string[] = [];
  /** Status codes to answer per path, in order; the last one repeats. */
  const script: Record<string, number[]> = { '/ok': [200], '/flaky': [500, 500, 200], '/gone': [410], '/rotated': [200] };
  const hits: Record<string, number> = {};
  const secrets: string[] = [];
  const { trainJsonl } = makeTicketSplit({ nTrain: 120, nHeldOut: 1, seed: 5 });
  let fileId: string;

  const api = async (method: string, route: string, body?: unknown, as = key) => {
    const res = await fetch(`${app.url}/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${as}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (method === 'GET') getResponses.push(text);
    return { status: res.status, body: JSON.parse(text) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const at = (path: string) => received.filter((r) => r.path === path);
  const createEndpoint = async (path: string, eventTypes?: string[]) => {
    const res = await api('POST', '/webhooks/endpoints', { url: `${base}${path}`, ...(eventTypes ? { event_types: eventTypes } : {}), description: path });
    expect(res.status).toBe(201);
    secrets.push(res.body.secret);
    return res.body as { id: string; secret: string };
  };
  const cancelledJob = async () => {
    const job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: fileId });
    await client.fineTuning.jobs.cancel(job.id);
    return job.id;
  };

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({
          path,
          id: String(req.headers['webhook-id']),
          timestamp: Number(req.headers['webhook-timestamp']),
          signature: String(req.headers['webhook-signature']),
          body,
          event: JSON.parse(body),
        });
        const n = (hits[path] = (hits[path] ?? 0) + 1);
        const codes = script[path] ?? [404];
        res.writeHead(codes[Math.min(n, codes.length) - 1]).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    app = await startTestApp({ WEBHOOK_RETRY_BASE_MS: '200', WEBHOOK_SWEEP_INTERVAL_MS: '500', LOG_LEVEL: 'debug' });
    const a = (await api('POST', '/admin/projects', { name: 'webhooks e2e' }, app.apiKey)).body;
    key = a.api_key.value;
    keyId = a.api_key.id;
    projectId = a.id;
    otherKey = (await api('POST', '/admin/projects', { name: 'webhooks e2e other' }, app.apiKey)).body.api_key.value;
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
    fileId = (await client.files.create({ file: await toFile(Buffer.from(trainJsonl), 'tickets.jsonl'), purpose: 'fine-tune' })).id;
  });
  afterAll(async () => {
    await app?.close();
    await new Promise((r) => receiver?.close(r));
  });

  it('creates an endpoint and shows its whsec_ secret once, never in a GET', async () => {
    const bad = await api('POST', '/webhooks/endpoints', { url: 'ftp://127.0.0.1/x' });
    expect([bad.status, bad.body.error.param]).toEqual([400, 'url']);
    const badType = await api('POST', '/webhooks/endpoints', { url: `${base}/ok`, event_types: ['fine_tuning.job.exploded'] });
    expect([badType.status, badType.body.error.param]).toEqual([400, 'event_types[0]']);

    const ep = await createEndpoint('/ok');
    expect(ep).toMatchObject({ object: 'webhook.endpoint', url: `${base}/ok`, event_types: [], enabled: true, description: '/ok' });
    expect(ep.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const got = await api('GET', `/webhooks/endpoints/${ep.id}`);
    expect(got.body).toMatchObject({ id: ep.id, url: `${base}/ok` });
    expect(got.body).not.toHaveProperty('secret');
    const list = await api('GET', '/webhooks/endpoints');
    expect(list.body.data.map((e: { id: string }) => e.id)).toEqual([ep.id]);
    expect(list.body.data[0]).not.toHaveProperty('secret');
    const row = await app.started.app.get(PrismaService).webhookEndpoint.findUniqueOrThrow({ where: { id: ep.id } });
    expect(row.secretSealed).not.toContain(ep.secret.slice(6));
  });

  it('sends exactly one signed fine_tuning.job.succeeded for a tiny-lora job run to success', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: fileId, suffix: 'hooks', method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2 } } } });
    const done = await waitFor('the job to finish', async () => {
      const j = await client.fineTuning.jobs.retrieve(job.id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 120_000);
    expect(done.status).toBe('succeeded');
    const mine = () => at('/ok').filter((r) => r.event.data.id === job.id);
    await waitFor('the succeeded event', async () => mine().length > 0, 20_000, 50);
    await new Promise((r) => setTimeout(r, 1500)); // two sweeps: nothing is sent twice
    expect(mine()).toHaveLength(1);
    const [r] = mine();
    expect(verify(secrets[0], r)).toBe(true);
    expect(r.id).toMatch(/^msg_/);
    expect(Math.abs(r.timestamp - Date.now() / 1000)).toBeLessThan(60);
    expect(r.event).toEqual({
      type: 'fine_tuning.job.succeeded',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      data: { id: job.id, object: 'fine_tuning.job', status: 'succeeded', model: 'tiny-lora', fine_tuned_model: done.fine_tuned_model, error: null, finished_at: done.finished_at },
    });
    const log = await api('GET', `/webhooks/endpoints/${(await api('GET', '/webhooks/endpoints')).body.data[0].id}/deliveries`);
    expect(log.body.data[0]).toMatchObject({ object: 'webhook.delivery', message_id: r.id, type: 'fine_tuning.job.succeeded', status: 'succeeded', attempts: 1, last_status: 200 });
    expect(log.body.data[0].log).toEqual([expect.objectContaining({ attempt: 1, status: 200, error: null })]);
  }, 180_000);

  it('retries a receiver that answers 500 twice with the same webhook-id, and logs the three attempts', async () => {
    const flaky = await createEndpoint('/flaky', ['fine_tuning.job.cancelled']);
    const jobId = await cancelledJob();
    await waitFor('three attempts', async () => at('/flaky').length >= 3, 20_000, 50);
    const tries = at('/flaky');
    expect(tries).toHaveLength(3);
    expect(new Set(tries.map((t) => t.id)).size).toBe(1);
    expect(new Set(tries.map((t) => t.body)).size).toBe(1); // the body is identical on every retry
    for (const t of tries) expect(verify(flaky.secret, t)).toBe(true);
    expect(tries[0].event).toMatchObject({ type: 'fine_tuning.job.cancelled', data: { id: jobId, status: 'cancelled' } });
    const log = await waitFor('the delivery to succeed', async () => {
      const res = await api('GET', `/webhooks/endpoints/${flaky.id}/deliveries`);
      return res.body.data[0]?.status === 'succeeded' ? res.body : null;
    }, 10_000, 100);
    expect(log.data).toHaveLength(1);
    expect(log.data[0]).toMatchObject({ message_id: tries[0].id, attempts: 3, last_status: 200, last_error: null, next_attempt_at: null });
    expect(log.data[0].log.map((a: { attempt: number; status: number; error: string | null }) => [a.attempt, a.status, a.error])).toEqual([
      [1, 500, 'the receiver answered HTTP 500'],
      [2, 500, 'the receiver answered HTTP 500'],
      [3, 200, null],
    ]);
    // The subscribe-to-everything endpoint got the same message id once.
    await waitFor('the /ok copy', async () => at('/ok').some((r) => r.id === tries[0].id), 10_000, 50);
  });

  it('moves an alias through the serving API and sends adapter.deployed and adapter.alias.moved', async () => {
    const jobs = await client.fineTuning.jobs.list();
    const succeeded = jobs.data.find((j) => j.status === 'succeeded')!;
    expect((await api('POST', '/adapters/tickets/versions', { job_id: succeeded.id })).status).toBe(201);
    expect((await api('POST', '/serving/pools', { name: 'hooks-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/hooks-pool/aliases/tickets/rollout', { version: 1, reason: 'first release' })).status).toBe(200);
    const deployed = await waitFor('adapter.deployed', async () => at('/ok').find((r) => r.event.type === 'adapter.deployed'), 10_000, 50);
    expect(deployed.event.data).toEqual({ pool: 'hooks-pool', adapter: 'tickets', version: 1 });
    const moved = await waitFor('adapter.alias.moved', async () => at('/ok').find((r) => r.event.type === 'adapter.alias.moved'), 10_000, 50);
    expect(moved.event.data).toEqual({ pool: 'hooks-pool', adapter: 'tickets', action: 'rollout', from_version: null, to_version: 1, canary_replicas: null, canary_request_share: null, actor: keyId, reason: 'first release' });
    expect(verify(secrets[0], moved)).toBe(true);
    // The same rollout again deploys nothing new: no second adapter.deployed.
    expect((await api('POST', '/serving/pools/hooks-pool/aliases/tickets/rollout', { version: 1, reason: 'again' })).status).toBe(200);
    await waitFor('the second move', async () => at('/ok').filter((r) => r.event.type === 'adapter.alias.moved').length === 2, 10_000, 50);
    expect(at('/ok').filter((r) => r.event.type === 'adapter.deployed')).toHaveLength(1);
  });

  it('delivers from Postgres alone: an event committed without any queue entry is found by the sweep', async () => {
    // As if Redis had lost the nudge: only the rows exist (eval.run.completed is reserved for evals; any type will do).
    const prisma = app.started.app.get(PrismaService);
    const messageId = await prisma.$transaction((tx) => recordWebhook(tx, projectId, 'eval.run.completed', { run: 'evalrun-sweep' }));
    expect(messageId).toMatch(/^msg_/);
    const r = await waitFor('the swept delivery', async () => at('/ok').find((x) => x.id === messageId), 10_000, 50);
    expect(r.event).toMatchObject({ type: 'eval.run.completed', data: { run: 'evalrun-sweep' } });
    expect(verify(secrets[0], r)).toBe(true);
  });

  it('signs with the new secret after a rotation, which shows it once', async () => {
    const ep = await createEndpoint('/rotated', ['fine_tuning.job.cancelled']);
    const rotated = await api('POST', `/webhooks/endpoints/${ep.id}/rotate_secret`);
    expect(rotated.status).toBe(201);
    secrets.push(rotated.body.secret);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(ep.secret);
    await cancelledJob();
    const r = await waitFor('a delivery', async () => at('/rotated')[0], 10_000, 50);
    expect(verify(rotated.body.secret, r)).toBe(true);
    expect(verify(ep.secret, r)).toBe(false);
  });

  it('disables an endpoint that answers 410 Gone', async () => {
    const ep = await createEndpoint('/gone', ['fine_tuning.job.cancelled']);
    await cancelledJob();
    const got = await waitFor('disabled', async () => {
      const res = await api('GET', `/webhooks/endpoints/${ep.id}`);
      return res.body.enabled === false ? res.body : null;
    }, 10_000, 100);
    expect(got.disabled_reason).toMatch(/410 Gone/);
    expect(at('/gone')).toHaveLength(1);
    const log = await api('GET', `/webhooks/endpoints/${ep.id}/deliveries`);
    expect(log.body.data[0]).toMatchObject({ status: 'failed', attempts: 1, last_status: 410 });
    // A disabled endpoint gets no new deliveries.
    await cancelledJob();
    await new Promise((r) => setTimeout(r, 800));
    expect(at('/gone')).toHaveLength(1);
  });

  it("keeps projects apart: another project sees none of this project's endpoints or deliveries", async () => {
    const mine = (await api('GET', '/webhooks/endpoints')).body.data as { id: string }[];
    expect(mine.length).toBeGreaterThan(0);
    expect((await api('GET', '/webhooks/endpoints', undefined, otherKey)).body.data).toEqual([]);
    for (const [method, route] of [
      ['GET', `/webhooks/endpoints/${mine[0].id}`],
      ['GET', `/webhooks/endpoints/${mine[0].id}/deliveries`],
      ['POST', `/webhooks/endpoints/${mine[0].id}/rotate_secret`],
      ['DELETE', `/webhooks/endpoints/${mine[0].id}`],
    ]) {
      const res = await api(method, route, undefined, otherKey);
      expect([method, route, res.status, res.body.error?.code]).toEqual([method, route, 404, 'not_found']);
    }
    // A job of the other project reaches none of this project's endpoints.
    const other = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: otherKey, maxRetries: 0 });
    const f = await other.files.create({ file: await toFile(Buffer.from(trainJsonl), 'other.jsonl'), purpose: 'fine-tune' });
    const job = await other.fineTuning.jobs.create({ model: 'tiny-lora', training_file: f.id });
    await other.fineTuning.jobs.cancel(job.id);
    await new Promise((r) => setTimeout(r, 800));
    expect(received.some((r) => r.event.data.id === job.id)).toBe(false);
  });

  it('deletes an endpoint with its log', async () => {
    const ep = await createEndpoint('/ok', ['eval.run.completed']);
    expect((await api('DELETE', `/webhooks/endpoints/${ep.id}`)).body).toEqual({ object: 'webhook.endpoint.deleted', id: ep.id, deleted: true });
    expect((await api('GET', `/webhooks/endpoints/${ep.id}`)).status).toBe(404);
  });

  it('refuses loopback targets when private targets are not allowed, naming url', async () => {
    const strict = await startTestApp({ ALLOWED_PRIVATE_NETWORKS: 'none', LORAPLANE_ROLE: 'api' });
    try {
      for (const url of [`${base}/ok`, 'http://localhost:9/x', 'http://[::1]/x', 'http://[::ffff:127.0.0.1]/x', 'http://169.254.169.254/latest', 'http://10.1.2.3/x']) {
        const res = await fetch(`${strict.url}/v1/webhooks/endpoints`, {
          method: 'POST',
          headers: { authorization: `Bearer ${strict.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url }),
        });
        const body = (await res.json()) as { error: { param: string; message: string } };
        expect([url, res.status, body.error.param]).toEqual([url, 400, 'url']);
        expect(body.error.message).toMatch(/loopback|private|link-local|metadata/);
      }
    } finally {
      await strict.close();
    }
  });

  it('never shows a secret in a GET response or a log line', () => {
    expect(secrets.length).toBeGreaterThan(3);
    expect(mockLogLines.length).toBeGreaterThan(10);
    const logs = mockLogLines.join('\n');
    const gets = getResponses.join('\n');
    expect(gets).toContain('webhook.delivery');
    for (const s of secrets) {
      const bare = s.slice('whsec_'.length);
      expect(logs).not.toContain(bare);
      expect(gets).not.toContain(bare);
    }
    expect(logs).not.toContain('whsec_');
  });
});
