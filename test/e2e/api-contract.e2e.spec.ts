import { randomBytes } from 'node:crypto';
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
  });
  afterAll(async () => {
    // A gpu-one job left open would be failed by the next suite's start-up sweep, whose catalog has no gpu-one.
    await prisma?.fineTuningJob.updateMany({ where: { projectId, status: { in: ['queued', 'running', 'validating_files'] } }, data: { status: 'cancelled' } });
    await stopAllReplicas();
    await app?.close();
    await openai?.close();
  });

  it('project, API keys, models, usage and GPU hosts', async () => {
    await ok('GET', '/project');
    const created = await ok('POST', '/api_keys', { name: 'second' });
    await ok('GET', '/api_keys');
    await ok('DELETE', `/api_keys/${created.id}`);
    await ok('DELETE', `/admin/api_keys/${(await ok('POST', '/api_keys', { name: 'third' })).id}`, undefined, app.apiKey);
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

    await ok('GET', `/files/${(await ok('POST', '/files', form({ purpose: 'fine-tune' }, { name: 'f.jsonl', text: trainJsonl }))).id}`);
    const bytes = Buffer.byteLength(trainJsonl);
    const upload = await ok('POST', '/uploads', { bytes, filename: 'u.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const part = await ok('POST', `/uploads/${upload.id}/parts`, form({}, { field: 'data', name: 'part', text: trainJsonl }));
    await ok('POST', `/uploads/${upload.id}/complete`, { part_ids: [part.id] });
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
