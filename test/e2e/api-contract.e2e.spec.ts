import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { adapterFiles, initLora } from '../../jobs/tiny-lora/trainer';
import { PrismaService } from '../../src/db/prisma.service';
import { newId } from '../../src/common/ids';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { apiClient, ApiResponse } from '../support/api-client';
import { apiDocument, checkedRoutes } from '../support/api-contract';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';
import { startReplica, stopAllReplicas, TestReplica } from '../support/replicas';
import { seedAdapterVersion } from '../support/seed-adapter';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Documented routes whose calls need what this spec does not set up; the spec named calls them through the same
 * checking client.
 */
const CHECKED_ELSEWHERE: Record<string, string> = {
  'POST /v1/adapters/{adapter_name}/versions': 'adapters-registry.e2e (registers a trained job)',
  'POST /v1/migrations/openai/plan': 'migrate-openai.e2e (the OpenAI fine-tuning stand-in)',
  'POST /v1/migrations/openai/compare': 'migrate-openai.e2e (a migrated job, trained and deployed)',
};

/**
 * loraplane's own API contract: every route that documents its answer, called on the real app (api + worker,
 * Postgres, Redis, S3, a replica with its agent, the OpenAI stand-in) through the shared client, which checks each
 * 2xx JSON answer against the route's schema in the OpenAPI document the dashboard's and the CLI's types are
 * generated from (test/support/api-contract.ts). The last test fails for a documented route nothing here calls.
 */
describe('API contract (e2e)', () => {
  jest.setTimeout(120_000);
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 40, nHeldOut: 12, seed: 41 });
  const openaiKey = `sk-standin-${randomBytes(12).toString('hex')}`;
  let app: TestApp;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;
  let openai: OpenAIStandIn;
  let replica: TestReplica;
  /** Where the webhook endpoint points: answers every delivery 204, so the log shows a succeeded attempt. */
  let receiver: http.Server;
  let receiverUrl: string;
  const ids: Record<string, string> = {};

  const api = apiClient(() => ({ url: app.url, key }));
  /** Calls a route and expects a 2xx (the client has then checked the answer against the document). */
  const ok = async (method: string, route: string, body?: unknown, as?: string): Promise<any> => {
    const res: ApiResponse = await api(method, route, body, as);
    if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${res.text.slice(0, 500)}`);
    return res.body;
  };
  const form = (fields: Record<string, string>, file: { field?: string; name: string; text: string }) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    f.append(file.field ?? 'file', new Blob([file.text]), file.name);
    return f;
  };
  const noopAdapter = (seed: number) => adapterFiles({ ...initLora(8, seed), r: 8, alpha: 16, scale: 2 } as never, { r: 8, alpha: 16, dropout: 0 });

  beforeAll(async () => {
    openai = await startOpenAIStandIn({ apiKey: openaiKey, answer: () => 'billing' });
    app = await startTestApp({ MODEL_CATALOG_FILE: writeFakeCatalog([{ id: 'gpu-one', count: 1, minMemoryGb: 40 }]), RECONCILE_INTERVAL_MS: '300' });
    prisma = app.started.app.get(PrismaService);
    const created = await ok('POST', '/admin/projects', { name: 'contract e2e' }, app.apiKey);
    [key, projectId] = [created.api_key.value, created.id];
    replica = await startReplica('ct0');
    receiver = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(204).end()));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  });
  afterAll(async () => {
    // A gpu-one job left open would be failed by the next suite's start-up sweep, whose catalog has no gpu-one.
    await prisma?.fineTuningJob.updateMany({ where: { projectId, status: { in: ['queued', 'running', 'validating_files'] } }, data: { status: 'cancelled' } });
    await stopAllReplicas();
    await app?.close();
    await openai?.close();
    await new Promise((r) => (receiver ? receiver.close(r) : r(undefined)));
  });

  it('project, API keys and their rate limits, provider models, models, usage, GPU hosts and Kubernetes clusters', async () => {
    await ok('GET', '/project');
    const created = await ok('POST', '/api_keys', { name: 'second' });
    await ok('GET', '/api_keys');
    expect(await ok('PUT', `/api_keys/${created.id}/rate_limits`, { rpm: 600 })).toEqual({ object: 'rate_limits', scope: 'api_key', id: created.id, rpm: 600, tpm: null });
    await ok('GET', `/api_keys/${created.id}/rate_limits`);
    await ok('DELETE', `/api_keys/${created.id}`);
    await ok('PUT', `/admin/projects/${projectId}/rate_limits`, { rpm: null, tpm: 1_000_000 }, app.apiKey);
    expect(await ok('GET', '/project/rate_limits')).toMatchObject({ scope: 'project', id: projectId, rpm: null, tpm: 1_000_000 });
    await ok('PUT', `/admin/projects/${projectId}/rate_limits`, {}, app.apiKey); // lifted again for the gateway calls below
    // One with a key (never shown: has_api_key), one without; the second goes through OpenAI's DELETE /v1/models.
    await ok('POST', '/provider_models', { name: 'contract-provider', base_url: openai.url, model: 'gpt-4o-mini', api_key: openaiKey });
    await ok('POST', '/provider_models', { name: 'contract-keyless', base_url: openai.url });
    expect((await ok('GET', '/provider_models')).data.map((p: any) => [p.name, p.has_api_key])).toEqual([['contract-provider', true], ['contract-keyless', false]]);
    await ok('DELETE', '/provider_models/contract-provider');
    await ok('DELETE', '/models/contract-keyless');
    await ok('DELETE', `/admin/api_keys/${(await ok('POST', '/api_keys', { name: 'third' })).id}`, undefined, app.apiKey);
    expect((await ok('GET', '/admin/projects?limit=100', undefined, app.apiKey)).data.map((p: any) => p.id)).toContain(projectId);
    await ok('DELETE', `/admin/api_keys/${(await ok('POST', `/admin/projects/${projectId}/api_keys`, { name: 'from the operator' }, app.apiKey)).id}`, undefined, app.apiKey);
    await ok('GET', '/models');
    await ok('GET', '/models/tiny-lora');
    await ok('GET', '/usage?start=0&group_by=model,day');
    // Disabled, on an address nothing answers: no job of another suite is ever placed on it.
    const tls = { ca: '/etc/lp/ca.pem', cert: '/etc/lp/cert.pem', key: '/etc/lp/key.pem' };
    const host = await ok('POST', '/admin/gpu_hosts', { name: `contract-${randomBytes(4).toString('hex')}`, engine_url: 'tcp://gpu-contract.invalid:2376', tls, gpus: [{ index: 0, model: 'A100', memory_gb: 80 }], enabled: false }, app.apiKey);
    expect(host.tls).toEqual(tls);
    await ok('GET', '/admin/gpu_hosts', undefined, app.apiKey);
    await ok('PATCH', `/admin/gpu_hosts/${host.id}`, { usd_per_gpu_hour: 1.5 }, app.apiKey);
    await ok('GET', `/admin/gpu_hosts/${host.id}`, undefined, app.apiKey);
    await ok('DELETE', `/admin/gpu_hosts/${host.id}`, undefined, app.apiKey);
    // Disabled: placement never sends a job to it (the registry is global; nothing here must be placed there).
    const cluster = await ok('POST', '/admin/kubernetes_clusters', {
      name: `contract-${randomBytes(4).toString('hex')}`, kubeconfig_path: '/etc/lp/kubeconfig', context: 'gpu', namespace: 'ml', models: ['gpu-one'],
      node_selector: { 'nvidia.com/gpu.present': 'true' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }], enabled: false,
    }, app.apiKey);
    await ok('GET', '/admin/kubernetes_clusters', undefined, app.apiKey);
    await ok('PATCH', `/admin/kubernetes_clusters/${cluster.id}`, { usd_per_gpu_hour: 2.5, kueue_queue: 'training' }, app.apiKey);
    await ok('GET', `/admin/kubernetes_clusters/${cluster.id}`, undefined, app.apiKey);
    await ok('DELETE', `/admin/kubernetes_clusters/${cluster.id}`, undefined, app.apiKey);
  });

  it('datasets (valid, invalid, eval), the dry run, stats, a split, files and uploads', async () => {
    const chat = await ok('POST', '/datasets', form({}, { name: 'tickets.jsonl', text: trainJsonl }));
    expect(chat.stats.tokens.total).toBeGreaterThan(0);
    ids.chat = chat.id;
    const bad = `${trainJsonl.split('\n')[0]}\n{"messages":[{"role":"bot","content":"x"}]}\nnot json\n`;
    expect((await ok('POST', '/datasets', form({}, { name: 'bad.jsonl', text: bad }))).report.errors.length).toBeGreaterThan(1);
    await ok('POST', '/datasets/validate', form({}, { name: 'tickets.jsonl', text: trainJsonl }));
    expect((await ok('POST', '/datasets/validate', form({}, { name: 'bad.jsonl', text: bad }))).valid).toBe(false);
    const evalLines = heldOut.map((e) => JSON.stringify({ prompt: e.messages.slice(0, 2), reference: e.label })).join('\n');
    ids.evalSet = (await ok('POST', '/datasets?format=eval&purpose=evals', form({}, { name: 'tickets-eval.jsonl', text: evalLines }))).id;
    await ok('GET', '/datasets?limit=100');
    await ok('GET', `/datasets/${chat.id}`);
    await ok('GET', `/datasets/${chat.id}/stats?n_epochs=2`);
    const split = await ok('POST', `/datasets/${chat.id}/split`, { validation_fraction: 0.5, seed: 1 });
    await ok('DELETE', `/datasets/${split.validation.id}`);

    const file = await ok('POST', '/files', form({ purpose: 'fine-tune' }, { name: 'f.jsonl', text: trainJsonl }));
    await ok('GET', `/files/${file.id}`);
    await ok('GET', '/files?limit=2');
    expect(await ok('GET', '/files?purpose=none-such')).toMatchObject({ data: [], first_id: null, last_id: null });
    await ok('DELETE', `/files/${file.id}`);
    const bytes = Buffer.byteLength(trainJsonl);
    const upload = await ok('POST', '/uploads', { bytes, filename: 'u.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const part = await ok('POST', `/uploads/${upload.id}/parts`, form({}, { field: 'data', name: 'part', text: trainJsonl }));
    expect((await ok('GET', `/uploads/${upload.id}`)).parts).toHaveLength(1);
    await ok('POST', `/uploads/${upload.id}/complete`, { part_ids: [part.id] });
    expect((await ok('GET', `/uploads/${upload.id}`)).file.status).toBe('processed');
    await ok('POST', `/uploads/${(await ok('POST', '/uploads', { bytes, filename: 'v.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' })).id}/cancel`);
  });

  it('a job waiting for GPUs: estimate, create, list, read, events, metrics, checkpoints, cancel', async () => {
    const body = { model: 'gpu-one', training_file: ids.chat, suffix: 'contract' };
    await ok('POST', '/fine_tuning/jobs/estimate', body);
    const job = await ok('POST', '/fine_tuning/jobs', body);
    await ok('GET', '/fine_tuning/jobs?limit=5');
    await ok('GET', `/fine_tuning/jobs/${job.id}`);
    await ok('GET', `/fine_tuning/jobs/${job.id}/events`);
    await ok('GET', `/fine_tuning/jobs/${job.id}/metrics`);
    // A checkpoint as the trainer's checkpoint line records it: the job itself never gets a GPU here.
    const file = { name: 'adapter_model.safetensors', bytes: 12, sha256: 'a'.repeat(64) };
    await prisma.checkpoint.create({ data: { id: newId.checkpoint(), jobId: job.id, projectId, attempt: 1, step: 3, keyPrefix: `jobs/${job.id}/1/ckpt-3/`, files: [file], metrics: { train_loss: 0.5 } } });
    expect((await ok('GET', `/fine_tuning/jobs/${job.id}/checkpoints`)).data).toHaveLength(1);
    await ok('POST', `/fine_tuning/jobs/${job.id}/cancel`);
  });

  it('webhook endpoints: create, list, read, rotate the secret, delete', async () => {
    // Subscribed to adapter.deployed: the next test's deployments fill its delivery log.
    const endpoint = await ok('POST', '/webhooks/endpoints', { url: receiverUrl, event_types: ['adapter.deployed'], description: 'contract' });
    expect(endpoint.secret).toMatch(/^whsec_/);
    ids.webhook = endpoint.id;
    await ok('GET', '/webhooks/endpoints');
    // The read answers never carry the secret: the document's closed schema would refuse it.
    await ok('GET', `/webhooks/endpoints/${endpoint.id}`);
    const spare = await ok('POST', '/webhooks/endpoints', { url: `${receiverUrl}/spare` });
    expect((await ok('POST', `/webhooks/endpoints/${spare.id}/rotate_secret`)).secret).not.toBe(spare.secret);
    await ok('DELETE', `/webhooks/endpoints/${spare.id}`);
  });

  it('pool, replica, versions, deployments, every alias move, its history, the registry', async () => {
    const store = { prisma, s3: testS3(), bucket: requireEnv('S3_BUCKET'), projectId };
    for (const seed of [4, 5]) await seedAdapterVersion(store, 'tickets', noopAdapter(seed));
    await ok('POST', '/serving/pools', { name: 'contract-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4, usd_per_gpu_hour: 2, gpus_per_replica: 1 });
    await ok('POST', '/serving/pools/contract-pool/replicas', { name: 'ct0', vllm_url: replica.vllmUrl, agent_url: replica.agentUrl, agent_token: replica.token });
    for (const version of [1, 2]) await ok('POST', '/serving/pools/contract-pool/deployments', { adapter: 'tickets', version });
    const alias = '/serving/pools/contract-pool/aliases/tickets';
    await ok('POST', `${alias}/rollout`, { version: 1, reason: 'first' });
    await ok('POST', `${alias}/canary`, { version: 2, request_share: 50 });
    await ok('POST', `${alias}/promote`, {});
    await ok('POST', `${alias}/rollback`, { reason: 'back' });
    expect((await ok('GET', `${alias}/history`)).data.map((e: any) => e.action)).toEqual(['rollback', 'promote', 'canary', 'rollout']);
    // Loaded on the replica, the pool shows what the agent reported and the no-effect check.
    await waitFor('the replica to report both versions', async () => {
      const pool = await ok('GET', '/serving/pools/contract-pool');
      return pool.replicas[0].adapters.length >= 2 && pool.deployments.every((d: any) => d.probe) ? pool : null;
    }, 30_000, 200);
    await ok('GET', `${alias}?window_minutes=5`);
    await ok('GET', '/serving/pools');

    // v1's files under another name: a new adapter (the same bytes under 'tickets' would be v1 again).
    const v1 = (await prisma.adapterVersion.findFirstOrThrow({ where: { projectId, version: 1, adapter: { name: 'tickets' } } })).s3Prefix;
    const imported = await ok('POST', '/adapters/copy/versions/import', { s3_prefix: `s3://${store.bucket}/${v1}` });
    await ok('POST', '/serving/pools/contract-pool/deployments', { adapter: 'copy', version: imported.version });
    await ok('DELETE', `/serving/pools/contract-pool/deployments/copy/${imported.version}`);
    await ok('GET', '/adapters');
    await ok('GET', '/adapters/tickets/versions');
    expect((await ok('GET', `/adapters/copy/versions/${imported.version}`)).download.length).toBeGreaterThan(0);
    await ok('DELETE', `/adapters/copy/versions/${imported.version}`);

    const log = await waitFor('a delivered adapter.deployed event', async () => {
      const page = await ok('GET', `/webhooks/endpoints/${ids.webhook}/deliveries?limit=10`);
      return page.data.some((d: any) => d.status === 'succeeded' && d.log.length > 0) ? page : null;
    }, 30_000, 200);
    expect(log.data[0]).toMatchObject({ type: 'adapter.deployed', endpoint_id: ids.webhook });
  });

  it('eval targets, suites, runs, results, both reports, comparisons, cancels and gates', async () => {
    await ok('POST', '/evals/targets', { name: 'gpt', kind: 'api', base_url: openai.url, api_key: openaiKey, model: 'gpt-4o-mini' });
    await ok('POST', '/evals/targets', { name: 'base', kind: 'base', pool: 'contract-pool' });
    await ok('POST', '/evals/targets', { name: 'tickets-v1', kind: 'adapter', pool: 'contract-pool', adapter: 'tickets', version: 1 });
    await ok('DELETE', `/evals/targets/${(await ok('POST', '/evals/targets', { name: 'spare', kind: 'api', model: 'gpt-4o-mini', api_key: openaiKey })).id}`);
    await ok('GET', '/evals/targets');
    await ok('GET', '/evals/targets/gpt');
    const suite = await ok('POST', '/evals/suites', { name: 'tickets', dataset_id: ids.evalSet, scorer: 'exact_match' });
    const gsm = '{"question":"What is 2 + 3?","answer":"2 + 3 = 5\\n#### 5"}\n';
    await ok('POST', '/evals/suites/import', form({ name: 'gsm', format: 'gsm8k' }, { name: 'gsm8k.jsonl', text: gsm }));
    await ok('GET', '/evals/suites');
    await ok('GET', `/evals/suites/${suite.id}`);

    const run = await ok('POST', '/evals/runs', { suite_id: suite.id, targets: ['base', 'gpt', 'tickets-v1'] });
    const done = (id: string) => waitFor(`${id} to finish`, async () => ((await ok('GET', `/evals/runs/${id}`)).status === 'succeeded' ? true : null), 60_000, 200);
    await done(run.id);
    await ok('GET', '/evals/runs?limit=5');
    await ok('GET', `/evals/runs/${run.id}/results?limit=500`);
    expect((await ok('GET', `/evals/runs/${run.id}/report?format=json`)).targets).toHaveLength(3);
    const comparison = await ok('POST', '/evals/comparisons', { name: 'cmp', suites: [suite.id], targets: ['gpt', 'base'] });
    await waitFor('the comparison to finish', async () => ((await ok('GET', `/evals/comparisons/${comparison.id}`)).status === 'succeeded' ? true : null), 60_000, 200);
    await ok('GET', '/evals/comparisons?limit=5');
    expect((await ok('GET', `/evals/comparisons/cmp/report?format=json`)).benchmarks).toHaveLength(1);

    // Slow answers, so the run and the comparison are still going when they are cancelled.
    openai.setDelay(2_000);
    await ok('POST', `/evals/runs/${(await ok('POST', '/evals/runs', { suite_id: suite.id, targets: ['gpt'] })).id}/cancel`);
    await ok('POST', `/evals/comparisons/${(await ok('POST', '/evals/comparisons', { name: 'cmp-slow', suites: [suite.id], targets: ['gpt'] })).id}/cancel`);
    openai.setDelay(0);

    const gate = { suite_id: suite.id, baseline_target: 'base', min_margin: 0 };
    for (const at of ['/serving/pools/contract-pool/gate', '/serving/pools/contract-pool/aliases/tickets/gate']) {
      await ok('POST', at, gate);
      await ok('GET', at);
      await ok('DELETE', at);
    }
    await ok('DELETE', '/serving/pools/contract-pool/replicas/ct0');
  });

  it('calls every documented route here, or names the spec that does', () => {
    const documented = Object.entries(apiDocument().paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => (op.responses?.['200']?.content?.['application/json']?.schema ? [`${method.toUpperCase()} ${path}`] : [])),
    );
    expect(documented.filter((r) => !checkedRoutes.has(r) && !CHECKED_ELSEWHERE[r])).toEqual([]);
  });
});
