import { execFile } from 'node:child_process';
import path from 'node:path';
import { UsageMeter } from '../../src/usage/usage-meter';
import { apiClient } from '../support/api-client';
import { startTestApp, TestApp, waitFor } from '../support/app';
import { scrape, total } from '../support/prometheus';
import { freePort } from '../support/replicas';

const BIN = path.resolve(__dirname, '../../bin/loraplane.js');
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/**
 * The operations surface that does not need traffic: /metrics on every role (token on the main port, or a separate
 * port), the control plane's gauges moving with its state, rate-limit settings, and GET /v1/usage with the CLI.
 */
describe('operations: metrics, limits settings, usage API (e2e)', () => {
  let app: TestApp;
  let worker: TestApp;
  let workerMetrics: string;
  let key: string;
  let projectId: string;
  let slug: string;

  const api = apiClient(() => ({ url: app.url, key }));

  beforeAll(async () => {
    app = await startTestApp({ LORAPLANE_ROLE: 'api', METRICS_TOKEN });
    const port = await freePort();
    workerMetrics = `http://127.0.0.1:${port}/metrics`;
    worker = await startTestApp({ LORAPLANE_ROLE: 'worker', METRICS_PORT: String(port), QUEUE_PREFIX: app.config.env.QUEUE_PREFIX, RECONCILE_INTERVAL_MS: '300' });
    const created = await api('POST', '/admin/projects', { name: 'operations e2e' }, app.apiKey);
    key = created.body.api_key.value;
    projectId = created.body.id;
    slug = created.body.slug;
  });
  afterAll(async () => {
    await worker?.close();
    await app?.close();
  });

  it('serves /metrics on the main port only with the metrics token, never with an API key', async () => {
    expect((await fetch(`${app.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
    const families = await scrape(`${app.url}/metrics`, METRICS_TOKEN);
    expect(total(families, 'loraplane_process_cpu_seconds_total')).toBeGreaterThan(0);
    // The api role does not export the database-wide gauges: only the worker does (no double counting in a sum).
    expect(families.find((f) => f.name === 'loraplane_fine_tuning_jobs')).toBeUndefined();
    // The gateway's series are declared, with bounded labels only.
    const requests = families.find((f) => f.name === 'loraplane_gateway_requests_total');
    expect(requests?.type).toBe('COUNTER');
  });

  it("serves the worker's metrics on METRICS_PORT, and its gauges move with the control plane's state", async () => {
    const before = await scrape(workerMetrics);
    for (const name of ['loraplane_queue_tasks', 'loraplane_fine_tuning_jobs', 'loraplane_gpus', 'loraplane_serving_replicas', 'loraplane_reconciler_lag_seconds', 'loraplane_serving_replicas_out_of_sync']) {
      expect(before.find((f) => f.name === name)?.type).toBe('GAUGE');
    }
    expect(total(before, 'loraplane_queue_tasks', { queue: 'training', state: 'waiting' })).toBeGreaterThanOrEqual(0);
    const unreachableBefore = total(before, 'loraplane_serving_replicas', { status: 'unreachable' });
    expect((await api('POST', '/admin/gpu_hosts', { name: `ops-host-${Date.now()}`, engine_url: 'unix:///nonexistent.sock', gpus: [{ index: 0, model: 'H100', memory_gb: 80 }, { index: 1, model: 'H100', memory_gb: 80 }] }, app.apiKey)).status).toBe(201);
    expect((await api('POST', '/serving/pools', { name: 'ops-pool', base_model: 'tiny-lora', max_lora_rank: 8 })).status).toBe(201);
    const dead = await freePort();
    const replica = { name: 'r0', vllm_url: `http://127.0.0.1:${dead}`, agent_url: `http://127.0.0.1:${dead}`, agent_token: 'agent-token-0123456789' };
    expect((await api('POST', '/serving/pools/ops-pool/replicas', replica)).status).toBe(201);
    const after = await waitFor('the replica seen unreachable', async () => {
      const f = await scrape(workerMetrics);
      return total(f, 'loraplane_serving_replicas', { status: 'unreachable' }) > unreachableBefore ? f : null;
    }, 30_000, 300);
    expect(total(after, 'loraplane_gpus', { state: 'free' })).toBeGreaterThanOrEqual(2);
    expect(total(after, 'loraplane_serving_replicas_out_of_sync', { project: slug, pool: 'ops-pool' })).toBe(1);
    expect(total(after, 'loraplane_reconciler_lag_seconds', { project: slug, pool: 'ops-pool' })).toBeGreaterThanOrEqual(0);
    // On the separate port nothing else is served.
    expect((await fetch(workerMetrics.replace('/metrics', '/v1/models'))).status).toBe(404);
  });

  it('sets rate limits on a key (the project itself) and on a project (operators only), refusing bad values by name', async () => {
    // A second key of the tenant's (a key may not limit itself: the tenancy suite checks that).
    const keyId = (await api('POST', '/api_keys', { name: 'ci' })).body.id as string;
    expect((await api('GET', `/api_keys/${keyId}/rate_limits`)).body).toEqual({ object: 'rate_limits', scope: 'api_key', id: keyId, rpm: null, tpm: null });
    expect((await api('PUT', `/api_keys/${keyId}/rate_limits`, { rpm: 60, tpm: 10_000 })).body).toMatchObject({ rpm: 60, tpm: 10_000 });
    expect((await api('GET', `/api_keys/${keyId}/rate_limits`)).body).toMatchObject({ rpm: 60, tpm: 10_000 });
    const bad = await api('PUT', `/api_keys/${keyId}/rate_limits`, { rpm: 0 });
    expect([bad.status, bad.body.error.param]).toEqual([400, 'rpm']);
    const extra = await api('PUT', `/api_keys/${keyId}/rate_limits`, { rpm: 5, burst: 3 });
    expect(extra.status).toBe(400);
    expect((await api('PUT', '/api_keys/key_nope/rate_limits', { rpm: 5 })).status).toBe(404);
    // A tenant cannot lift (or set) its own project's cap; an operator can.
    expect((await api('PUT', `/admin/projects/${projectId}/rate_limits`, { rpm: 1000 })).status).toBe(403);
    expect((await api('PUT', `/admin/projects/${projectId}/rate_limits`, { rpm: 1000, tpm: null }, app.apiKey)).body).toMatchObject({ scope: 'project', rpm: 1000, tpm: null });
    expect((await api('GET', '/project/rate_limits')).body).toMatchObject({ rpm: 1000, tpm: null });
  });

  it('answers GET /v1/usage grouped, names bad parameters, and prints it with `loraplane usage`', async () => {
    const meter = app.started.app.get(UsageMeter);
    const now = Date.now();
    meter.record({ projectId, apiKeyId: 'key_x', model: 'support', resolved: 'support@v2', inputTokens: 12, outputTokens: 3, latencyMs: 40, error: false, at: now });
    meter.record({ projectId, apiKeyId: 'key_x', model: 'support', resolved: 'support@v3', inputTokens: 8, outputTokens: 1, latencyMs: 60, error: true, at: now });
    await meter.flush();
    const start = Math.floor(now / 1000) - 3600;
    const res = await api('GET', `/usage?start=${start}&group_by=version`);
    expect(res.status).toBe(200);
    expect(res.body.data.map((r: Record<string, unknown>) => [r.version, r.requests, r.errors, r.input_tokens, r.output_tokens])).toEqual([
      ['support@v2', 1, 0, 12, 3],
      ['support@v3', 1, 1, 8, 1],
    ]);
    expect(res.body.totals).toMatchObject({ requests: 2, input_tokens: 20, output_tokens: 4, total_tokens: 24, avg_latency_ms: 50 });
    expect((await api('GET', `/usage?start=${new Date(now - 3_600_000).toISOString()}`)).body.totals.requests).toBe(2);
    // Another tenant's usage stays its own.
    const other = (await api('POST', '/admin/projects', { name: 'operations e2e other' }, app.apiKey)).body.api_key.value as string;
    expect((await api('GET', `/usage?start=${start}`, undefined, other)).body.totals.requests).toBe(0);
    for (const [q, param] of [['', 'start'], [`start=${start}&group_by=user`, 'group_by'], [`start=yesterday`, 'start'], [`start=${start}&end=${start - 1}`, 'start'], [`start=${start}&limit=3`, null]] as const) {
      const bad = await api('GET', `/usage?${q}`);
      expect(bad.status).toBe(400);
      if (param) expect(bad.body.error.param).toBe(param);
    }
    const cli = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, [BIN, 'usage', '--since', '1h', '--group-by', 'model,version'], { env: { ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key } }, (err, stdout) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout }),
      ),
    );
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^MODEL\s+VERSION\s+REQUESTS\s+ERRORS\s+INPUT_TOKENS\s+OUTPUT_TOKENS\s+AVG_LATENCY_MS/);
    expect(cli.stdout).toMatch(/support\s+support@v3\s+1\s+1\s+8\s+1\s+60/);
    expect(cli.stdout).toMatch(/TOTAL\s+-\s+2\s+1\s+20\s+4\s+50/);
  });
});
