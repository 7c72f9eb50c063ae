import { Queue, Worker } from 'bullmq';
import OpenAI, { toFile } from 'openai';
import { ensureQueued } from '../../src/queue/queue-worker';
import { taskId } from '../../src/training/training.queue';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { requireEnv, startTestApp, TestApp, waitFor } from '../support/app';

/**
 * Postgres is the source of truth and Redis only carries work: a state that needs a queue entry whose entry is gone
 * (a crash between the write and the enqueue, Redis losing data) gets it back from the worker's sweep, within one
 * QUEUE_SWEEP_INTERVAL_MS, with no restart.
 */
describe('queue sweep (e2e)', () => {
  const prefix = `s${Date.now().toString(36)}`;
  const connection = { url: requireEnv('REDIS_URL') };
  const training = new Queue('training', { connection, prefix });
  let app: TestApp | undefined;

  afterAll(async () => {
    await app?.close();
    await training.close();
  });

  it('re-enqueues the run task of a queued job whose entry was removed, within the sweep interval', async () => {
    // No GPU host can ever hold 64 GPUs: the job waits, its run task parked as delayed for 10 minutes.
    const catalog = writeFakeCatalog([{ id: 'gpu-never', count: 64, minMemoryGb: 1 }]);
    app = await startTestApp({ MODEL_CATALOG_FILE: catalog, QUEUE_PREFIX: prefix, QUEUE_SWEEP_INTERVAL_MS: '1000', PLACEMENT_RETRY_MS: '600000' });
    const client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    const file = await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed: 3 })), 'd.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({ model: 'gpu-never', training_file: file.id });
    const id = taskId('job.run', { jobId: job.id, attempt: 1 });
    await waitFor('the run task to be parked', async () => (await (await training.getJob(id))?.isDelayed()) ?? false, 30_000, 100);

    await (await training.getJob(id))!.remove(); // the entry is lost; the job is still `queued` in Postgres
    expect(await training.getJob(id)).toBeUndefined();
    const t0 = Date.now();
    await waitFor('the sweep to re-enqueue it', async () => training.getJob(id), 5_000, 100);
    expect(Date.now() - t0).toBeLessThan(3_000); // one 1 s interval, plus the time the sweep itself takes
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('queued');
    await client.fineTuning.jobs.cancel(job.id);
  }, 90_000);

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
