import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { ChangeFeed } from '../../src/db/change-feed';
import { PrismaService } from '../../src/db/prisma.service';
import { GatewayHandler } from '../../src/gateway/gateway.handler';
import { InferenceRecord } from '../../src/gateway/gateway-hooks';
import { adapterFiles, examplesFromJsonl, train } from '../../jobs/tiny-lora/trainer';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testEnv, testS3, waitFor } from '../support/app';
import { scrape, total } from '../support/prometheus';
import { freePort, startReplica, stopAllReplicas, TestReplica } from '../support/replicas';
import { seedAdapterVersion } from '../support/seed-adapter';

const MAIN = path.resolve(__dirname, '../../dist/main.js');
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/**
 * Operating the gateway with real traffic: a canary by requests over 1,000 requests (split and stickiness), usage
 * totals against the usage blocks the clients received, Prometheus series and per-adapter figures that move, and
 * limits shared by two gateway processes (the built dist/main.js in the gateway role, one Redis).
 */
describe('gateway operations (e2e)', () => {
  jest.setTimeout(180_000);
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  let app: TestApp;
  let prisma: PrismaService;
  let key: string;
  let projectId: string;
  let replicas: TestReplica[] = [];
  const records: InferenceRecord[] = [];
  const gateways: ChildProcess[] = [];
  const t0 = Math.floor(Date.now() / 1000) - 60;

  const api = apiClient(() => ({ url: app.url, key }));

  const seedVersion = (adapter: string, files: { name: string; data: Buffer }[]) => seedAdapterVersion({ prisma, s3, bucket, projectId }, adapter, files);

  async function startGateway(env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: { ...testEnv({ LORAPLANE_ROLE: 'gateway', PORT: String(port), QUEUE_PREFIX: app.config.env.QUEUE_PREFIX, METRICS_TOKEN, ...env }) } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    gateways.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('gateway up', () => fetch(`${url}/healthz`).then((r) => r.ok, () => false), 60_000, 100);
    return { url, child };
  }

  const chat = (url: string, as: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: 'tickets', messages: [{ role: 'user', content: 'my parcel never came' }], max_tokens: 4, ...body }) });

  beforeAll(async () => {
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '500', METRICS_TOKEN, USAGE_FLUSH_INTERVAL_MS: '500' });
    prisma = app.started.app.get(PrismaService);
    app.started.app.get(GatewayHandler).observe({ onRequestEnd: (r) => records.push({ ...r }) });
    const created = (await api('POST', '/admin/projects', { name: 'gateway ops e2e' }, app.apiKey)).body;
    key = created.api_key.value;
    projectId = created.id;
    replicas = await Promise.all(['o0', 'o1'].map((n) => startReplica(n)));
    const { trainJsonl } = makeTicketSplit({ nTrain: 120, nHeldOut: 2, seed: 9 });
    const examples = examplesFromJsonl(trainJsonl);
    const lora = { r: 8, alpha: 16, dropout: 0 };
    await seedVersion('tickets', adapterFiles(await train(examples, { seed: 1, n_epochs: 2, batch_size: 8, learning_rate: 0.05, lora }), lora));
    await seedVersion('tickets', adapterFiles(await train(examples.slice(0, 40), { seed: 2, n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora }), lora));
    expect((await api('POST', '/serving/pools', { name: 'ops-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 })).status).toBe(201);
    for (const r of replicas) expect((await api('POST', '/serving/pools/ops-pool/replicas', { name: r.name, vllm_url: r.vllmUrl, agent_url: r.agentUrl, agent_token: r.token })).status).toBe(201);
    expect((await api('POST', '/serving/pools/ops-pool/aliases/tickets/rollout', { version: 1 })).status).toBe(200);
    expect((await api('POST', '/serving/pools/ops-pool/aliases/tickets/canary', { version: 2, request_share: 30 })).status).toBe(200);
    await waitFor('both arms loaded on both replicas', async () => {
      const view = (await api('GET', '/serving/pools/ops-pool/aliases/tickets')).body;
      return view.replicas?.every((r: { state: string; canary_state: string }) => r.state === 'loaded' && r.canary_state === 'loaded');
    }, 60_000, 200);
    // The gateway's table follows the reconciler's reports; wait until it routes to both arms on both replicas.
    await waitFor('the canary routable', async () => {
      const before = records.length;
      await Promise.all(Array.from({ length: 40 }, (_, i) => chat(app.url, key, { user: `warm-${i}` }).then((r) => r.text())));
      const arms = new Set(records.slice(before).map((r) => `${r.arm}:${r.replicaName}`));
      return arms.size === 4;
    }, 30_000, 200);
  });
  afterAll(async () => {
    for (const g of gateways) g.kill('SIGKILL');
    await stopAllReplicas();
    await app?.close();
  });

  it('splits 1,000 users 30/70 within 5 points, keeps every user and session on its arm, and meters what the clients received', async () => {
    const client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
    let input = 0;
    let output = 0;
    // Each request carries its own x-request-id, so its record (which arm, which version) is found again.
    const send = async (id: string, user: string, headers: Record<string, string> = {}) => {
      const res = await client.chat.completions.create({ model: 'tickets', messages: [{ role: 'user', content: `where is my order ${user}` }], max_tokens: 4, user }, { headers: { 'x-request-id': id, ...headers } });
      input += res.usage!.prompt_tokens;
      output += res.usage!.completion_tokens;
    };
    const armOf = (id: string) => records.find((r) => r.requestId === id)?.arm;
    const before = records.length;
    const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    for (let i = 0; i < users.length; i += 25) await Promise.all(users.slice(i, i + 25).map((u) => send(`r1-${u}`, u)));
    const round1 = records.slice(before);
    expect(round1).toHaveLength(1000);
    expect(round1.every((r) => r.status === 200 && (r.arm === 'canary') === (r.served === 'tickets@v2') && (r.arm === 'stable') === (r.served === 'tickets@v1'))).toBe(true);
    const canaryShare = (round1.filter((r) => r.arm === 'canary').length / 1000) * 100;
    expect(Math.abs(canaryShare - 30)).toBeLessThanOrEqual(5);

    // Stickiness: half of the users again, each on the arm it had; one session across 100 users stays on one arm.
    for (let i = 0; i < 500; i += 25) await Promise.all(users.slice(i, i + 25).map((u) => send(`r2-${u}`, u)));
    const moved = users.slice(0, 500).filter((u) => armOf(`r2-${u}`) !== armOf(`r1-${u}`));
    expect(moved).toEqual([]);
    for (let i = 0; i < 100; i += 25) await Promise.all(Array.from({ length: 25 }, (_, k) => send(`s-${i + k}`, `other-${i + k}`, { 'x-session-id': 'conversation-7' })));
    expect(new Set(Array.from({ length: 100 }, (_, k) => armOf(`s-${k}`))).size).toBe(1);

    // Usage: what the gateways flushed equals the usage blocks the clients received (all of this key's traffic).
    const warm = records.filter((r) => r.projectId === projectId).slice(0, before);
    const warmIn = warm.reduce((s, r) => s + (r.usage?.prompt_tokens ?? 0), 0);
    const warmOut = warm.reduce((s, r) => s + (r.usage?.completion_tokens ?? 0), 0);
    const usage = await waitFor('usage flushed', async () => {
      const u = (await api('GET', `/usage?start=${t0}&group_by=version`)).body;
      return u.totals.requests === warm.length + 1600 ? u : null;
    }, 15_000, 250);
    expect(usage.totals).toMatchObject({ requests: warm.length + 1600, errors: 0, input_tokens: input + warmIn, output_tokens: output + warmOut });
    const byVersion = new Map((usage.data as { version: string; requests: number }[]).map((d) => [d.version, d.requests]));
    expect(byVersion.get('tickets@v2')).toBe(records.filter((r) => r.projectId === projectId && r.served === 'tickets@v2').length);
  });

  it('moves the Prometheus series (bounded labels) and shows both canary arms side by side per replica', async () => {
    const families = await scrape(`${app.url}/metrics`, METRICS_TOKEN);
    const mine = records.filter((r) => r.projectId === projectId && r.status === 200);
    const canary = mine.filter((r) => r.arm === 'canary').length;
    expect(total(families, 'loraplane_gateway_requests_total', { pool: 'ops-pool', adapter: 'tickets', version: 'v2', arm: 'canary', outcome: 'ok' })).toBe(canary);
    expect(total(families, 'loraplane_gateway_requests_total', { pool: 'ops-pool', adapter: 'tickets', version: 'v1', arm: 'stable', outcome: 'ok' })).toBe(mine.length - canary);
    // The parser keeps a histogram's buckets but not its labels; its _count line is read from the text itself.
    expect(families.find((f) => f.name === 'loraplane_gateway_request_duration_seconds')?.type).toBe('HISTOGRAM');
    const text = await (await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(text).toContain(`loraplane_gateway_request_duration_seconds_count{pool="ops-pool",adapter="tickets",version="v2"} ${canary}`);
    expect(total(families, 'loraplane_gateway_tokens_total', { adapter: 'tickets', direction: 'output' })).toBe(mine.reduce((s, r) => s + (r.usage?.completion_tokens ?? 0), 0));
    const labelNames = new Set(families.filter((f) => f.name.startsWith('loraplane_gateway_')).flatMap((f) => f.metrics.flatMap((m) => Object.keys(m.labels ?? {}))));
    expect([...labelNames].sort()).toEqual(expect.arrayContaining(['adapter', 'arm', 'outcome', 'pool', 'version']));
    for (const forbidden of ['key', 'user', 'model', 'request_id', 'project']) expect(labelNames.has(forbidden)).toBe(false);

    const view = await waitFor('figures flushed', async () => {
      const v = (await api('GET', '/serving/pools/ops-pool/aliases/tickets?window_minutes=5')).body;
      const sum = v.traffic.versions.reduce((s: number, x: { requests: number }) => s + x.requests, 0);
      return sum >= mine.length ? v : null;
    }, 15_000, 250);
    const [stable, cand] = view.traffic.versions;
    expect([stable.arm, stable.version, cand.arm, cand.version]).toEqual(['stable', 1, 'canary', 2]);
    expect(cand.requests).toBe(canary);
    expect(cand.replicas.map((r: { replica: string }) => r.replica)).toEqual(['o0', 'o1']);
    expect(cand.latency_p50_ms).toBeGreaterThan(0);
    expect(cand.latency_p95_ms).toBeGreaterThanOrEqual(cand.latency_p50_ms);
    expect((await api('GET', '/serving/pools/ops-pool/aliases/tickets?window_minutes=99')).body.error.param).toBe('window_minutes');
  });

  it('shares a key limit across two gateway processes: 429 with Retry-After and x-ratelimit headers from both', async () => {
    const [a, b] = await Promise.all([startGateway(), startGateway()]);
    const limited = (await api('POST', '/api_keys', { name: 'limited' })).body;
    expect((await api('PUT', `/api_keys/${limited.id}/rate_limits`, { rpm: 10, tpm: null })).status).toBe(200);
    // The gateways learn of the limit from the change feed (milliseconds); the first answer with headers spends one.
    let last = '';
    await waitFor('limit known to gateway A', async () => {
      const res = await chat(a.url, limited.value, {});
      last = `${res.status} ${await res.text()}`;
      return res.headers.get('x-ratelimit-limit-requests') === '10';
    }, 30_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; last answer: ${last}`);
    });
    await waitFor('limit known to gateway B', async () => {
      const res = await fetch(`${b.url}/v1/models`, { headers: { authorization: `Bearer ${limited.value}` } });
      return res.ok;
    }, 30_000, 200);
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await chat(i % 2 ? a.url : b.url, limited.value, {}));
    const ok = answers.filter((r) => r.status === 200).length;
    // Admitted answers carry the headers too, counting down.
    const remaining = answers.filter((r) => r.status === 200).map((r) => Number(r.headers.get('x-ratelimit-remaining-requests')));
    expect(remaining.length).toBeGreaterThan(0);
    expect(remaining.every((n, i) => Number.isInteger(n) && n >= 0 && n < 10 && (i === 0 || n <= remaining[i - 1] + 1))).toBe(true);
    // 9 left after the first; one more may have refilled (10 per minute: one every 6 s) on a slow machine.
    expect(ok).toBeGreaterThanOrEqual(9);
    expect(ok).toBeLessThanOrEqual(10);
    const refused = answers.map((r, i) => ({ r, via: i % 2 ? 'a' : 'b' })).filter(({ r }) => r.status === 429);
    expect(new Set(refused.map((x) => x.via))).toEqual(new Set(['a', 'b']));
    for (const { r } of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get('x-ratelimit-limit-requests')).toBe('10');
      expect(r.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(r.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m\d+(\.\d+)?s$/);
      expect(((await r.json()) as { error: unknown }).error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
    }
    // The gateway role serves /metrics to the token, and counted its refusals.
    const fa = await scrape(`${a.url}/metrics`, METRICS_TOKEN);
    const fb = await scrape(`${b.url}/metrics`, METRICS_TOKEN);
    expect(total(fa, 'loraplane_gateway_rate_limited_total') + total(fb, 'loraplane_gateway_rate_limited_total')).toBe(refused.length);
    expect((await fetch(`${a.url}/metrics`)).status).toBe(401);
  });

  it('gives every answer of a gateway process a request id, and a refused request the exact wait the openai SDK reads first', async () => {
    const g = await startGateway();
    const limited = (await api('POST', '/api_keys', { name: 'retry-after-ms' })).body;
    // Under 100 a limit is decided in Redis request by request: 90 a minute is one request back every 667 ms.
    expect((await api('PUT', `/api_keys/${limited.id}/rate_limits`, { rpm: 90, tpm: null })).status).toBe(200);
    await waitFor('the limit known to the gateway', async () => (await chat(g.url, limited.value, { max_tokens: 1 })).headers.get('x-ratelimit-limit-requests') === '90', 30_000, 200);

    // Request ids: the caller's own when it is a plain id, else one made by the gateway, on every kind of answer.
    const traced = await chat(g.url, limited.value, { max_tokens: 1 }, { 'x-request-id': 'trace-42.a:b' });
    expect(traced.headers.get('x-request-id')).toBe('trace-42.a:b');
    const odd = await chat(g.url, limited.value, { max_tokens: 1 }, { 'x-request-id': 'two words' });
    expect(odd.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9]+$/);
    const others = [
      await chat(g.url, limited.value, { model: 'no-such-model' }),
      await chat(g.url, 'lp_not-a-key', {}),
      await fetch(`${g.url}/v1/models`, { headers: { authorization: `Bearer ${limited.value}` } }),
      await fetch(`${g.url}/v1/nothing-here`),
    ];
    expect(others.map((r) => r.status)).toEqual([404, 401, 200, 404]);
    const ids = [odd, ...others].map((r) => r.headers.get('x-request-id'));
    expect(ids.every((id) => id !== null && /^req_[A-Za-z0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // The openai SDK shows it as `_request_id`, and on an error as `requestID`.
    const seen: { res: Response; sentAt: number; at: number }[] = [];
    const client = new OpenAI({
      baseURL: `${g.url}/v1`,
      apiKey: limited.value,
      maxRetries: 5,
      fetch: async (url, init) => {
        const sentAt = performance.now();
        const res = await fetch(url as string, init as RequestInit);
        seen.push({ res, sentAt, at: performance.now() });
        return res;
      },
    });
    const ask = () => client.chat.completions.create({ model: 'tickets', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    const ok = await ask();
    expect(ok._request_id).toBe(seen.at(-1)!.res.headers.get('x-request-id'));
    const missing = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).requestID).toBe(seen.at(-1)!.res.headers.get('x-request-id'));

    // Past the minute's 90: each refusal says Retry-After in whole seconds and retry-after-ms, finer; the SDK
    // waits that long (at least) before it asks again, and every call ends with its answer.
    seen.length = 0;
    for (let i = 0; i < 95; i++) expect((await ask()).choices).toHaveLength(1);
    const refusals = seen.map((x, i) => ({ ...x, next: seen[i + 1] })).filter((x) => x.res.status === 429);
    expect(refusals.length).toBeGreaterThan(0);
    for (const { res, at, next } of refusals) {
      const waitMs = Number(res.headers.get('retry-after-ms'));
      expect({ waitMs, valid: Number.isInteger(waitMs) && waitMs >= 1 && waitMs <= 667 }).toEqual({ waitMs, valid: true });
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.headers.get('x-request-id')).toMatch(/^req_/);
      expect(next.sentAt - at).toBeGreaterThanOrEqual(waitMs - 2);
    }
    expect(seen.at(-1)!.res.status).toBe(200);
  });

  it('applies limits set through this process to the next request it serves, without waiting for the change feed', async () => {
    const limited = (await api('POST', '/api_keys', { name: 'read your writes' })).body;
    // In this process's key table, without limits, before they are set.
    const before = await chat(app.url, limited.value, {});
    expect(before.status).toBe(200);
    expect(before.headers.get('x-ratelimit-limit-requests')).toBeNull();
    // The change feed held back, so only what the PUT itself does can make the limits known here.
    const feed = app.started.app.get(ChangeFeed) as unknown as { emit(table: string): void };
    const held = jest.spyOn(feed, 'emit').mockImplementation(() => undefined);
    try {
      expect((await api('PUT', `/api_keys/${limited.id}/rate_limits`, { rpm: 2, tpm: null })).status).toBe(200);
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await chat(app.url, limited.value, {}));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 429]);
      expect(answers.map((r) => r.headers.get('x-ratelimit-remaining-requests'))).toEqual(['1', '0', '0']);
      // Lifted the same way: the next request is not refused.
      expect((await api('PUT', `/api_keys/${limited.id}/rate_limits`, { rpm: null, tpm: null })).status).toBe(200);
      const lifted = await chat(app.url, limited.value, {});
      expect(lifted.status).toBe(200);
      expect(lifted.headers.get('x-ratelimit-limit-requests')).toBeNull();
    } finally {
      held.mockRestore();
    }
  });

  it("refuses over a TPM limit as OpenAI does: type 'tokens', the limit and the request in the message", async () => {
    const limited = (await api('POST', '/api_keys', { name: 'tpm 50' })).body;
    expect((await api('PUT', `/api_keys/${limited.id}/rate_limits`, { rpm: null, tpm: 50 })).status).toBe(200);
    // An estimate over the whole limit passes a full bucket (and leaves it in debt); the next one waits.
    const first = await chat(app.url, limited.value, { max_tokens: 100 });
    expect(first.status).toBe(200);
    const refused = await chat(app.url, limited.value, { max_tokens: 100 });
    expect(refused.status).toBe(429);
    const error = ((await refused.json()) as { error: { type: string; code: string; message: string } }).error;
    expect(error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
    expect(error.message).toMatch(/^Rate limit reached on tokens per min \(TPM\) for this key or project: Limit 50, Remaining \d+, Requested \d+\. Please try again in \d+s\.$/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(1);
    expect(error.message).toContain(`try again in ${refused.headers.get('retry-after')}s`);
  });

  it('loses at most the last flush interval of usage when a gateway process is killed with -9', async () => {
    const FLUSH_MS = 1000;
    const g = await startGateway({ USAGE_FLUSH_INTERVAL_MS: String(FLUSH_MS) });
    const fresh = (await api('POST', '/api_keys', { name: 'killed' })).body;
    // Steady traffic from 4 clients; each answer's arrival time is kept.
    const answeredAt: number[] = [];
    let stop = false;
    const client = async () => {
      while (!stop) {
        const res = await chat(g.url, fresh.value, {}).catch(() => null);
        if (res?.status === 200) {
          await res.json();
          answeredAt.push(Date.now());
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    const stored = async () => ((await api('GET', `/usage?start=${t0}&group_by=key`)).body.data.find((d: { api_key_id: string }) => d.api_key_id === fresh.id)?.requests ?? 0) as number;
    await waitFor('the first flush', async () => (await stored()) > 0, 30_000, 100);
    await new Promise((r) => setTimeout(r, 2.5 * FLUSH_MS));
    const exited = new Promise((r) => g.child.once('exit', r));
    g.child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited;
    stop = true;
    await Promise.all(clients);
    const persisted = await stored();
    // Counted when the answer ended, flushed every FLUSH_MS: all that was answered more than one interval (plus a
    // busy machine's 500 ms for the flush itself) before the kill is in Postgres; the rest may be lost.
    const mustHave = answeredAt.filter((t) => t < killedAt - FLUSH_MS - 500).length;
    expect(mustHave).toBeGreaterThan(10);
    expect(persisted).toBeGreaterThanOrEqual(mustHave);
    expect(persisted).toBeLessThanOrEqual(answeredAt.filter((t) => t <= killedAt).length);
  });

  it('flushes a gateway process its usage at a graceful stop', async () => {
    const g = await startGateway({ USAGE_FLUSH_INTERVAL_MS: '5000' });
    const fresh = (await api('POST', '/api_keys', { name: 'graceful' })).body;
    const answers = await Promise.all(Array.from({ length: 5 }, () => chat(g.url, fresh.value, {}).then((r) => r.json() as Promise<{ usage: { prompt_tokens: number } }>)));
    const exited = new Promise((r) => g.child.once('exit', r));
    g.child.kill('SIGTERM');
    await exited;
    const usage = (await api('GET', `/usage?start=${t0}&group_by=key`)).body;
    const row = usage.data.find((d: { api_key_id: string }) => d.api_key_id === fresh.id);
    expect(row).toMatchObject({ requests: 5, input_tokens: answers.reduce((s, a) => s + a.usage.prompt_tokens, 0) });
  });
});
