import { apiClient } from '../support/api-client';
import { startTestApp, TestApp } from '../support/app';

/**
 * Every URL a tenant supplies goes through the one guard at create: a 400 naming the field, nothing stored, and a
 * message that names the class of address but not the address.
 */
describe("tenants' URLs (e2e)", () => {
  let app: TestApp;
  const api = apiClient(() => ({ url: app.url, key: app.apiKey }));

  beforeAll(async () => {
    // The production default: no private network at all.
    app = await startTestApp({ LORAPLANE_ROLE: 'api', ALLOWED_PRIVATE_NETWORKS: 'none' });
    expect((await api('POST', '/serving/pools', { name: 'p', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2 })).status).toBe(201);
  });
  afterAll(() => app.close());

  const bad = [
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://[::ffff:169.254.169.254]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[2002:a9fe:a9fe::]/',
    'http://127.0.0.1:6379/',
    'http://localhost:5432/',
    'http://10.0.0.7:9000/',
    'http://198.18.0.1/',
  ];

  it.each(bad)('refuses an eval target at %s with 400 naming base_url', async (url) => {
    const res = await api('POST', '/evals/targets', { name: `t${bad.indexOf(url)}`, kind: 'api', base_url: url, model: 'o3-mini' });
    expect([res.status, res.body.error?.param, res.body.error?.code]).toEqual([400, 'base_url', 'invalid_request']);
    expect(res.body.error?.message).toMatch(/metadata|link-local|loopback|private/);
    expect(res.body.error?.message).not.toMatch(/169\.254|127\.0\.0|10\.0\.0|a9fe/);
  });

  it.each(bad)('refuses a replica at %s with 400 naming the field', async (url) => {
    const good = 'https://8.8.8.8/';
    const asVllm = await api('POST', '/serving/pools/p/replicas', { name: 'r1', vllm_url: url, agent_url: good, agent_token: 'x'.repeat(32) });
    expect([asVllm.status, asVllm.body.error?.param]).toEqual([400, 'vllm_url']);
    const asAgent = await api('POST', '/serving/pools/p/replicas', { name: 'r1', vllm_url: good, agent_url: url, agent_token: 'x'.repeat(32) });
    expect([asAgent.status, asAgent.body.error?.param]).toEqual([400, 'agent_url']);
  });

  it.each(bad)('refuses a webhook endpoint at %s with 400 naming url', async (url) => {
    const res = await api('POST', '/webhooks/endpoints', { url });
    expect([res.status, res.body.error?.param]).toEqual([400, 'url']);
  });

  it('stored none of them', async () => {
    // The project is shared with other suites: what matters is that no refused URL was kept, whatever else is there.
    const targets = (await api('GET', '/evals/targets')).body.data as { base_url?: string }[];
    const endpoints = (await api('GET', '/webhooks/endpoints')).body.data as { url: string }[];
    const pool = (await api('GET', '/serving/pools/p')).body as unknown as { replicas: { vllm_url: string; agent_url: string }[] };
    const stored = [...targets.map((t) => t.base_url), ...endpoints.map((e) => e.url), ...pool.replicas.flatMap((r) => [r.vllm_url, r.agent_url])];
    for (const url of bad) expect(stored).not.toContain(url);
  });
});
