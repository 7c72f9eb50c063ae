import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import OpenAI, { toFile } from 'openai';
import { PrismaService } from '../../src/db/prisma.service';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';

/**
 * What a failed job names and records, for the review's smaller findings. A trainer is tenant-chosen code: what it
 * announces is checked against the prefix its attempt may write to. A checkpoint pointing into another project's
 * files is not recorded (a later resume or download would hand those files out), an artifact that is not where it says fails the job as artifact_invalid, and that failure still
 * records what the run cost (the GPUs or CPUs were used all the same). A validation file that went bad is blamed on
 * `validation_file`, not on the training file.
 */
describe('job failures: what they name and what they cost (e2e)', () => {
  let app: TestApp;
  let client: OpenAI;
  const api = apiClient(() => ({ url: app.url, key: app.apiKey }));
  const settled = (id: string) =>
    waitFor(`job ${id} to settle`, async () => {
      const j = (await api('GET', `/fine_tuning/jobs/${id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 60_000, 200);
  const upload = async (seed: number, name: string) =>
    (await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed })), name), purpose: 'fine-tune' })).id;

  beforeAll(async () => {
    app = await startTestApp({ MODEL_CATALOG_FILE: writeFakeCatalog() });
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
  });
  afterAll(() => app?.close());

  it('records no checkpoint outside the attempt prefix, and fails an artifact that is not there as artifact_invalid with its cost', async () => {
    const created = await client.fineTuning.jobs.create({ model: 'fake-astray', training_file: await upload(12, 'astray.jsonl') });
    const job = await settled(created.id);

    expect(job).toMatchObject({ status: 'failed', error: { code: 'artifact_invalid', message: 'the trainer announced adapter_model.safetensors but it is not in object storage' } });
    // The run lasted its second of "training" and is charged for it (at a CPU model's price, fractions of a cent).
    expect(job.cost).toMatchObject({ seconds: expect.any(Number), gpus: 0, usd: expect.any(Number), usd_per_gpu_hour: expect.any(Number) });
    expect(job.cost.seconds).toBeGreaterThanOrEqual(1);
    const checkpoints = await api('GET', `/fine_tuning/jobs/${created.id}/checkpoints`);
    expect([checkpoints.status, checkpoints.body.data]).toEqual([200, []]);
  }, 90_000);

  it('blames a validation file gone from storage on validation_file, with its own code', async () => {
    const training = await upload(13, 'failures-train.jsonl');
    const validation = await upload(14, 'failures-valid.jsonl');
    const { s3Key } = await app.started.app.get(PrismaService).dataset.findUniqueOrThrow({ where: { id: validation } });
    await testS3().send(new DeleteObjectCommand({ Bucket: requireEnv('S3_BUCKET'), Key: s3Key }));
    const created = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: training, validation_file: validation });
    expect(await settled(created.id)).toMatchObject({
      status: 'failed',
      error: { code: 'invalid_validation_file', param: 'validation_file', message: `File ${validation} is no longer available or not valid` },
    });
  }, 90_000);
});
