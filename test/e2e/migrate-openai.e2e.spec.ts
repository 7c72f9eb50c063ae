import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { PrismaService } from '../../src/db/prisma.service';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { startTestApp, TestApp } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';

/* eslint-disable @typescript-eslint/no-explicit-any */

const BIN = path.resolve(__dirname, '../../bin/loraplane.js');

/**
 * Migration from OpenAI fine-tuning against the stand-in's Files and Fine-tuning routes (OpenAI's shapes, jobs paged
 * 20 at a time): files copied into datasets and validated like any upload, equivalent jobs planned on gpt-oss-20b as
 * a dry run, then started by the CLI with --start (once, however often it runs).
 */
describe('migrate from OpenAI fine-tuning (e2e)', () => {
  jest.setTimeout(120_000);
  const openaiKey = `sk-standin-${randomBytes(12).toString('hex')}`;
  let openai: OpenAIStandIn;
  let app: TestApp;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;

  const plan = async (body: object) => {
    const res = await fetch(`${app.url}/v1/migrations/openai/plan`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) as any };
  };

  beforeAll(async () => {
    openai = await startOpenAIStandIn({ apiKey: openaiKey });
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
    const created = (await fetch(`${app.url}/v1/admin/projects`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'migrate e2e' }) }).then((r) => r.json())) as any;
    key = created.api_key.value;
    projectId = created.id;
  });
  afterAll(async () => {
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
});
