import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { PrismaService } from '../../src/db/prisma.service';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { newProject, startTestApp, TestApp, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';
import { startReplica, stopAllReplicas } from '../support/replicas';

/* eslint-disable @typescript-eslint/no-explicit-any */

const BIN = path.resolve(__dirname, '../../bin/loraplane.js');

/**
 * Migration from OpenAI fine-tuning against the stand-in's Files and Fine-tuning routes (OpenAI's shapes, jobs paged
 * 20 at a time): files copied into datasets and validated like any upload, equivalent jobs planned on gpt-oss-20b as
 * a dry run, then started by the CLI with --start (once, however often it runs). Last, a job migrated onto tiny-lora
 * and auto-deployed is compared with the OpenAI fine-tuned model (the stand-in) on the OpenAI job's validation file.
 */
describe('migrate from OpenAI fine-tuning (e2e)', () => {
  jest.setTimeout(240_000);
  const openaiKey = `sk-standin-${randomBytes(12).toString('hex')}`;
  let openai: OpenAIStandIn;
  let app: TestApp;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;

  const api = apiClient(() => ({ url: app.url, key }));
  // Through the shared client, so each plan is also checked against the route's documented schema.
  const plan = (body: object) => api('POST', '/migrations/openai/plan', body);

  beforeAll(async () => {
    // The "OpenAI fine-tuned model" of ftjob-ok00 always answers "account"; other models answer "ok".
    openai = await startOpenAIStandIn({ apiKey: openaiKey, answer: (model) => (model.startsWith('ft:gpt-4o-mini-2024-07-18:org-standin:tickets-0:') ? 'account' : 'ok') });
    const acct = openai.account;
    acct.seedFile({ id: 'file-train', filename: 'tickets-train.jsonl', purpose: 'fine-tune', content: makeTicketDataset({ n: 40, seed: 1 }) });
    acct.seedFile({ id: 'file-valid', filename: 'tickets-valid.jsonl', purpose: 'fine-tune', content: makeTicketDataset({ n: 12, seed: 2 }) });
    acct.seedFile({ id: 'file-broken', filename: 'broken.jsonl', purpose: 'fine-tune', content: '{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n' });
    // 22 jobs: more than one page of 20. Twenty succeeded on the same files (one dataset each here), one failed, one
    // succeeded on a file that does not validate.
    for (let i = 0; i < 20; i++) {
      acct.seedJob({
        id: `ftjob-ok${String(i).padStart(2, '0')}`, model: 'gpt-4o-mini-2024-07-18', training_file: 'file-train', validation_file: i === 0 ? 'file-valid' : null,
        fine_tuned_model: `ft:gpt-4o-mini-2024-07-18:org-standin:tickets-${i}:abc${i}`, status: 'succeeded', suffix: `tickets-${i}`, seed: 42 + i,
        metadata: { team: 'support' }, method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3, batch_size: 8, learning_rate_multiplier: 0.5 } } },
      });
    }
    acct.seedJob({ id: 'ftjob-failed', model: 'gpt-4o-mini-2024-07-18', training_file: 'file-broken', validation_file: null, fine_tuned_model: null, status: 'failed', suffix: null, seed: 1, metadata: null, method: { type: 'supervised', supervised: { hyperparameters: {} } } });
    acct.seedJob({ id: 'ftjob-broken', model: 'gpt-4o-mini-2024-07-18', training_file: 'file-broken', validation_file: null, fine_tuned_model: 'ft:gpt-4o-mini:org-standin::zzz', status: 'succeeded', suffix: null, seed: 7, metadata: null, method: { type: 'dpo', dpo: { hyperparameters: { beta: 0.1 } } } });
    app = await startTestApp({ OPENAI_BASE_URL: openai.url });
    prisma = app.started.app.get(PrismaService);
    ({ key, id: projectId } = await newProject(app, 'migrate e2e'));
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
    await openai?.close();
  });

  it('plans every succeeded job on gpt-oss-20b with the same method, hyperparameters, suffix, seed and metadata; starts nothing', async () => {
    const res = await plan({ api_key: openaiKey });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(openaiKey);
    expect(res.body.jobs).toHaveLength(21); // every succeeded job of both pages, not the failed one
    const first = res.body.jobs.find((j: any) => j.openai_job.id === 'ftjob-ok00');
    expect(first.create).toEqual({
      model: 'gpt-oss-20b', training_file: first.files.training.file_id, validation_file: first.files.validation.file_id, suffix: 'tickets-0', seed: 42,
      metadata: { team: 'support', migrated_from: 'ftjob-ok00' }, method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3, batch_size: 8, learning_rate_multiplier: 0.5 } } },
    });
    expect(first.estimate).toMatchObject({ method: 'supervised', n_epochs: 3 });
    expect(first.estimate.gpu_hours).toBeGreaterThan(0);
    expect(first.files.training).toMatchObject({ openai_file: 'file-train', filename: 'tickets-train.jsonl', status: 'ready' });
    const broken = res.body.jobs.find((j: any) => j.openai_job.id === 'ftjob-broken');
    expect(broken).toMatchObject({ create: null, error: { param: 'training_file' }, files: { training: { status: 'invalid' } } });
    // Copied once each and validated like any upload; no job created.
    const datasets = await prisma.dataset.findMany({ where: { projectId }, orderBy: { filename: 'asc' } });
    expect(datasets.map((d) => [d.filename, d.status])).toEqual([['broken.jsonl', 'invalid'], ['tickets-train.jsonl', 'ready'], ['tickets-valid.jsonl', 'ready']]);
    expect(await prisma.fineTuningJob.count({ where: { projectId } })).toBe(0);
  });

  it('refuses a wrong key naming api_key, and an unknown job with a 404', async () => {
    const bad = await plan({ api_key: 'sk-wrong-key-0000' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ param: 'api_key', message: expect.stringContaining('invalid_api_key') });
    expect(bad.text).not.toContain('sk-wrong-key-0000');
    expect((await plan({ api_key: openaiKey, jobs: ['ftjob-nope'] })).status).toBe(404);
  });

  it('starts the planned jobs with the CLI --start, once however often it runs', async () => {
    const cli = () =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, 'migrate', 'openai', '--job', 'ftjob-ok01', '--job', 'ftjob-ok02', '--start'], {
          env: { ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key, OPENAI_API_KEY: openaiKey },
        }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
      });
    const first = await cli();
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('Plan on gpt-oss-20b (dry run: nothing started)');
    expect(first.stdout).toMatch(/ftjob-ok01 +ftjob-/);
    expect(await cli()).toMatchObject({ code: 0 });
    const jobs = await prisma.fineTuningJob.findMany({ where: { projectId } });
    expect(jobs).toHaveLength(2);
    expect(jobs.map((j) => j.model)).toEqual(['gpt-oss-20b', 'gpt-oss-20b']);
  });

  it("compares the OpenAI fine-tuned model with the migrated adapter on the OpenAI job's validation file; asking again returns the same comparison", async () => {
    const post = (route: string, body: object) => api('POST', route, body);
    const replica = await startReplica('migrate');
    expect((await post('/serving/pools', { name: 'migrated', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2, auto_deploy: true })).status).toBe(201);
    expect((await post('/serving/pools/migrated/replicas', { name: replica.name, vllm_url: replica.vllmUrl, agent_url: replica.agentUrl, agent_token: replica.token })).status).toBe(201);
    const planned = (await plan({ api_key: openaiKey, base_model: 'tiny-lora', jobs: ['ftjob-ok00'] })).body.jobs[0];
    const started = await post('/fine_tuning/jobs', planned.create);
    expect(started.status).toBe(200);
    // Before the job has succeeded there is nothing to compare.
    const early = await post('/migrations/openai/compare', { api_key: openaiKey, job: started.body.id });
    expect(early.status).toBe(400);
    expect(early.body.error).toMatchObject({ code: 'invalid_state', param: 'job', message: expect.stringContaining('once it has succeeded') });
    const done = await waitFor('the migrated job to finish', async () => {
      const job = (await api('GET', `/fine_tuning/jobs/${started.body.id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(job.status) ? job : null;
    }, 180_000);
    expect(done.status).toBe('succeeded');
    await waitFor('the adapter to be auto-deployed', async () => (await prisma.deployment.count({ where: { projectId } })) > 0, 10_000, 100);

    // An OpenAI job without a validation file has nothing held out.
    const noHeldOut = await post('/migrations/openai/compare', { api_key: openaiKey, job: started.body.id, openai_job: 'ftjob-ok01' });
    expect(noHeldOut.status).toBe(400);
    expect(noHeldOut.body.error).toMatchObject({ param: 'openai_job', message: expect.stringContaining('no validation file') });

    const cli = () =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, 'migrate', 'openai', 'compare', started.body.id, '--wait'], {
          env: { ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key, OPENAI_API_KEY: openaiKey },
        }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
      });
    const first = await cli();
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/succeeded\n$/); // progress goes to stderr, the report to stdout
    console.info(`migration comparison report (loraplane migrate openai compare --wait):\n${first.stdout}`);
    expect(first.stdout).not.toContain(openaiKey);
    // The Markdown report: both targets on the 12 validation items, the OpenAI model as baseline.
    expect(first.stdout).toMatch(/\.openai/);
    expect(first.stdout).toMatch(/\.loraplane/);

    const again = await post('/migrations/openai/compare', { api_key: openaiKey, job: started.body.id });
    expect(again.status).toBe(201);
    expect(again.text).not.toContain(openaiKey);
    expect(again.body).toMatchObject({
      object: 'migration.openai.comparison',
      comparison: { status: 'succeeded' },
      suite: { items: 12 },
      targets: { openai: { kind: 'api', model: 'ft:gpt-4o-mini-2024-07-18:org-standin:tickets-0:abc0', has_api_key: true }, loraplane: { kind: 'adapter', pool: 'migrated' } },
    });
    expect(await prisma.evalComparison.count({ where: { projectId } })).toBe(1);
    const report = (await api('GET', `/evals/comparisons/${again.body.comparison.id}/report?format=json`)).body;
    expect(again.body.report).toBe(`/v1/evals/comparisons/${again.body.comparison.id}/report?format=md`);
    expect(report.baseline).toBe(again.body.targets.openai.name);
    // Every item answered by both: the OpenAI model through the stand-in with the user's key, the adapter on the pool.
    const run = (await api('GET', `/evals/runs/${again.body.comparison.runs[0].id}`)).body;
    const results = (await api('GET', `/evals/runs/${run.id}/results?limit=50`)).body;
    expect({ errors: run.progress.targets.map((t: any) => t.errors), sample: results.data.filter((x: any) => x.error).slice(0, 2) }).toEqual({ errors: [0, 0], sample: [] });
    const accuracy = report.benchmarks[0].accuracy;
    // The stand-in's model always says "account": its accuracy is the share of account items, computed, not guessed.
    const validation = makeTicketDataset({ n: 12, seed: 2 }).trim().split('\n').map((l) => JSON.parse(l).messages.at(-1).content);
    const accountItems = validation.filter((a: string) => a === 'account').length;
    expect(accountItems).toBeGreaterThan(0);
    expect(accuracy[again.body.targets.openai.name]).toMatchObject({ n: 12, k: accountItems });
    expect(accuracy[again.body.targets.loraplane.name]).toMatchObject({ n: 12 });
  });
});
