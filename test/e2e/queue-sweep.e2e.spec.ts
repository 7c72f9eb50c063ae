import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Queue, Worker } from 'bullmq';
import OpenAI, { toFile } from 'openai';
import { newId } from '../../src/common/ids';
import { DatasetStats } from '../../src/datasets/datasets.service';
import { PrismaService } from '../../src/db/prisma.service';
import { Prisma } from '../../src/generated/prisma/client';
import { ensureQueued } from '../../src/queue/queue-worker';
import { taskId } from '../../src/training/training.queue';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';

/**
 * Postgres is the source of truth and Redis only carries work: a state that needs a queue entry whose entry is gone
 * (a crash between the write and the enqueue, Redis losing data) gets it back from the worker's sweep, within one
 * QUEUE_SWEEP_INTERVAL_MS, with no restart. Jobs, eval runs and datasets' token counts each; an upload whose
 * complete crashed is expired with its parts by the same periodic sweep once its lease lapses.
 */
describe('queue sweep (e2e)', () => {
  const prefix = `s${Date.now().toString(36)}`;
  const connection = { url: requireEnv('REDIS_URL') };
  const training = new Queue('training', { connection, prefix });
  const evals = new Queue('evals', { connection, prefix });
  const datasets = new Queue('datasets', { connection, prefix });
  const SWEEP_MS = 1000;
  /** One interval, plus the time the sweep and the recovered task themselves take on a loaded machine. */
  const WITHIN_MS = 3 * SWEEP_MS;
  let app: TestApp;
  let client: OpenAI;
  let prisma: PrismaService;
  let openai: OpenAIStandIn;
  const api = apiClient(() => ({ url: app.url, key: app.apiKey }));

  beforeAll(async () => {
    // No GPU host can ever hold 64 GPUs: a job waits, its run task parked as delayed for 10 minutes.
    const catalog = writeFakeCatalog([{ id: 'gpu-never', count: 64, minMemoryGb: 1 }]);
    openai = await startOpenAIStandIn({ apiKey: 'sk-standin-sweep' });
    app = await startTestApp({ MODEL_CATALOG_FILE: catalog, QUEUE_PREFIX: prefix, QUEUE_SWEEP_INTERVAL_MS: String(SWEEP_MS), PLACEMENT_RETRY_MS: '600000' });
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    prisma = app.started.app.get(PrismaService);
  });
  afterAll(async () => {
    await app?.close();
    await openai?.close();
    for (const q of [training, evals, datasets]) await q.close();
  });

  /** Milliseconds until `what` holds, failing past a few intervals. */
  const recovery = async (what: string, fn: () => Promise<boolean>) => {
    const t0 = Date.now();
    await waitFor(what, async () => fn(), 5 * SWEEP_MS, 50);
    return Date.now() - t0;
  };

  it('re-enqueues the run task of a queued job whose entry was removed, within the sweep interval', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed: 3 })), 'd.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({ model: 'gpu-never', training_file: file.id });
    const id = taskId('job.run', { jobId: job.id, attempt: 1 });
    await waitFor('the run task to be parked', async () => (await (await training.getJob(id))?.isDelayed()) ?? false, 30_000, 100);

    await (await training.getJob(id))!.remove(); // the entry is lost; the job is still `queued` in Postgres
    expect(await training.getJob(id)).toBeUndefined();
    expect(await recovery('the sweep to re-enqueue it', async () => Boolean(await training.getJob(id)))).toBeLessThan(WITHIN_MS);
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('queued');
    await client.fineTuning.jobs.cancel(job.id);
  }, 90_000);

  it('runs an eval run that was written but never enqueued (a crash between the two), within the sweep interval', async () => {
    const name = `sweep-${prefix}`;
    const form = new FormData();
    const items = Array.from({ length: 10 }, (_, i) => JSON.stringify({ prompt: `${i}+${i}`, reference: 'ok' })); // the stand-in says "ok"
    form.append('file', new Blob([items.join('\n')]), `${name}.jsonl`);
    const up = await fetch(`${app.url}/v1/datasets?format=eval&purpose=evals`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: form });
    const file = (await up.json()) as { id: string; status: string };
    expect(file.status).toBe('ready');
    const suite = await api('POST', '/evals/suites', { name, dataset_id: file.id, scorer: 'exact_match' });
    const target = await api('POST', '/evals/targets', { name, kind: 'api', base_url: openai.url, api_key: 'sk-standin-sweep', model: 'gpt-4o-mini' });
    expect([suite.status, target.status]).toEqual([201, 201]);
    const { projectId } = await prisma.evalSuite.findUniqueOrThrow({ where: { id: suite.body.id } });
    // What EvalsService.createRun writes before it enqueues: the row, and no task.
    const run = await prisma.evalRun.create({
      data: { id: newId.evalRun(), projectId, suiteId: suite.body.id, targetIds: [target.body.id], baselineTargetId: target.body.id, total: items.length },
    });
    expect(await evals.getJob(`run.execute.${run.id}`)).toBeUndefined();

    const status = async () => (await prisma.evalRun.findUniqueOrThrow({ where: { id: run.id } })).status;
    expect(await recovery('the sweep to start the run', async () => (await status()) !== 'queued')).toBeLessThan(WITHIN_MS);
    const done = await waitFor('the run to finish', async () => {
      const r = (await api('GET', `/evals/runs/${run.id}`)).body;
      return r.status === 'queued' || r.status === 'running' ? null : r;
    }, 30_000, 100);
    expect(done).toMatchObject({ status: 'succeeded', progress: { done: 10, targets: [{ target: name, done: 10, correct: 10, errors: 0 }] } });
  }, 60_000);

  it("counts a dataset's tokens when its count task is missing, within the sweep interval", async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed: 4 })), `sweep-${prefix}.jsonl`), purpose: 'fine-tune' });
    const counted = (await prisma.dataset.findUniqueOrThrow({ where: { id: file.id } })).stats as unknown as DatasetStats;
    expect(counted.tokens).not.toBeNull();
    // What a crash between registering a large file and enqueuing its count leaves: tokens pending and no task.
    const pending: DatasetStats = { ...counted, tokens: null, tokens_pending: true };
    await prisma.dataset.update({ where: { id: file.id }, data: { stats: pending as unknown as Prisma.InputJsonValue } });
    expect(await datasets.getJob(`dataset.count_tokens.${file.id}`)).toBeUndefined();

    const stats = async () => (await prisma.dataset.findUniqueOrThrow({ where: { id: file.id } })).stats as unknown as DatasetStats;
    expect(await recovery('the sweep to count the tokens', async () => !(await stats()).tokens_pending)).toBeLessThan(WITHIN_MS);
    expect((await stats()).tokens).toEqual(counted.tokens);
  }, 60_000);

  it('expires an upload whose complete crashed, with its parts, from the periodic sweep once the lease lapses', async () => {
    const s3 = testS3();
    const keys = async (p: string) => ((await s3.send(new ListObjectsV2Command({ Bucket: requireEnv('S3_BUCKET'), Prefix: p }))).Contents ?? []).map((o) => o.Key);
    const data = Buffer.from(makeTicketDataset({ n: 10, seed: 6 }));
    const up = await api('POST', '/uploads', { bytes: data.length, filename: `sweep-${prefix}.jsonl`, mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const form = new FormData();
    form.append('data', new Blob([data]), 'part');
    const part = await fetch(`${app.url}/v1/uploads/${up.body.id}/parts`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: form });
    expect([up.status, part.status]).toEqual([200, 200]);
    const { s3Prefix } = await prisma.upload.findUniqueOrThrow({ where: { id: up.body.id } });
    expect(await keys(s3Prefix)).toHaveLength(1);

    // What a process killed in the middle of complete leaves: a lease nobody renews (lapsing 3 s from now), on an
    // upload past its time. While the lease runs, its holder may yet finish: sweeps leave it alone.
    const lapse = Date.now() + 3000;
    await prisma.upload.update({ where: { id: up.body.id }, data: { leaseId: 'dead-process', leaseUntil: new Date(lapse), expiresAt: new Date(Date.now() - 1000) } });
    await new Promise((r) => setTimeout(r, 1.5 * SWEEP_MS));
    expect((await prisma.upload.findUniqueOrThrow({ where: { id: up.body.id } })).status).toBe('pending');

    await waitFor('the sweep to expire it', async () => (await prisma.upload.findUniqueOrThrow({ where: { id: up.body.id } })).status === 'expired', 5000 + WITHIN_MS, 50);
    expect(Date.now() - lapse).toBeLessThan(WITHIN_MS);
    expect(await prisma.upload.findUniqueOrThrow({ where: { id: up.body.id } })).toMatchObject({ leaseId: null, leaseUntil: null });
    expect(await prisma.uploadPart.count({ where: { uploadId: up.body.id } })).toBe(0);
    expect(await keys(s3Prefix)).toEqual([]);
  }, 60_000);

  it('adds a missing task, leaves a pending one alone, and replaces a kept failed entry (which a plain add would skip)', async () => {
    const q = new Queue('sweep-probe', { connection, prefix });
    const worker = new Worker('sweep-probe', async () => { throw new Error('spent'); }, { connection, prefix, autorun: false });
    try {
      const opts = { jobId: 'probe.1', attempts: 1, removeOnFail: { count: 10 } };
      expect(await ensureQueued(q, 'probe', { n: 1 }, opts)).toBe(true);
      expect(await ensureQueued(q, 'probe', { n: 1 }, opts)).toBe(false); // waiting: collapses into it
      void worker.run();
      await waitFor('the task to fail for good', async () => (await (await q.getJob('probe.1'))?.getState()) === 'failed', 10_000, 50);
      await worker.close();
      await q.add('probe', { n: 1 }, opts); // a plain add under a kept failed id is a no-op...
      expect(await (await q.getJob('probe.1'))!.getState()).toBe('failed');
      expect(await ensureQueued(q, 'probe', { n: 1 }, opts)).toBe(true); // ...so the sweep replaces the entry
      expect(await (await q.getJob('probe.1'))!.getState()).toBe('waiting');
    } finally {
      await worker.close();
      await q.obliterate({ force: true });
      await q.close();
    }
  });
});
