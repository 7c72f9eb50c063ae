import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import OpenAI, { toFile } from 'openai';
import { makePreferenceSplit } from '../fixtures/tiny-lm-tasks';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
// The tiny model's own code reads the adapter back, so the test measures a real accuracy difference.
import { parseAdapter, predict } from '../../jobs/tiny-lora/model';

/**
 * The product's thin path, driven by the official openai SDK with only baseURL and apiKey changed: upload a chat
 * dataset, fine-tune the tiny reference model (a real container on the local Docker engine), watch its events,
 * and get a LoRA adapter in S3 that measurably beats the base model.
 */
describe('thin path with the official openai SDK (e2e)', () => {
  let app: TestApp;
  let client: OpenAI;
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 240, nHeldOut: 120, seed: 7 });

  beforeAll(async () => {
    app = await startTestApp();
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
  });
  afterAll(async () => {
    await app?.close();
  });

  async function objectBytes(key: string): Promise<Buffer> {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  it('uploads, trains, streams events and stores a PEFT adapter that beats the base model', async () => {
    const t0 = Date.now();
    const jsonl = trainJsonl;
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'tickets.jsonl'), purpose: 'fine-tune' });
    expect(file).toMatchObject({ object: 'file', purpose: 'fine-tune', filename: 'tickets.jsonl', bytes: Buffer.byteLength(jsonl), status: 'processed' });
    expect(file.id).toMatch(/^file-/);
    // OpenAI's document types these as integer/string and does not require them: absent, never null.
    expect(file).not.toHaveProperty('expires_at');
    expect(file).not.toHaveProperty('status_details');

    expect(await client.files.retrieve(file.id)).toMatchObject({ id: file.id, bytes: file.bytes });
    const listed = await client.files.list();
    expect(listed.data.map((f) => f.id)).toContain(file.id);
    const content = await client.files.content(file.id);
    expect(await content.text()).toBe(jsonl);

    const created = await client.fineTuning.jobs.create({
      model: 'tiny-lora',
      training_file: file.id,
      suffix: 'tickets',
      seed: 1234,
      metadata: { team: 'support' },
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 8, batch_size: 16 } } },
    });
    expect(created).toMatchObject({ object: 'fine_tuning.job', model: 'tiny-lora', status: 'validating_files', fine_tuned_model: null, seed: 1234 });
    expect(created.id).toMatch(/^ftjob-/);

    const seen = new Set<string>();
    const done = await waitFor('the job to finish', async () => {
      const job = await client.fineTuning.jobs.retrieve(created.id);
      seen.add(job.status);
      return ['succeeded', 'failed', 'cancelled'].includes(job.status) ? job : null;
    });
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    expect(done.fine_tuned_model).toBe(`ft:tiny-lora:default:tickets:${created.id.slice('ftjob-'.length)}`);
    expect(done.trained_tokens).toBeGreaterThan(0);
    expect(done.finished_at).toBeGreaterThanOrEqual(done.created_at);

    // Events, newest first, with the loss curve in metrics events.
    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(created.id, { limit: 10 })) events.push(e);
    expect(events[0].message).toBe('The job has successfully completed');
    expect(events.at(-1)!.message).toBe(`Created fine-tuning job: ${created.id}`);
    const times = events.map((e) => e.created_at);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const metrics = events.filter((e) => e.type === 'metrics').map((e) => e.data as { step: number; train_loss: number }).reverse();
    expect(metrics.length).toBeGreaterThan(3);
    expect(metrics.map((m) => m.step)).toEqual([...metrics.map((m) => m.step)].sort((a, b) => a - b));
    expect(metrics.at(-1)!.train_loss).toBeLessThan(metrics[0].train_loss);
    for (const status of ['Files validated; the job is queued', 'Starting training container']) {
      expect(events.some((e) => e.message.startsWith(status))).toBe(true);
    }

    // The fine-tuned model is listed next to the base models.
    const models = (await client.models.list()).data.map((m) => m.id);
    expect(models).toEqual(expect.arrayContaining(['tiny-lora', 'gpt-oss-20b', 'gpt-oss-120b', done.fine_tuned_model!]));
    expect(await client.models.retrieve(done.fine_tuned_model!)).toMatchObject({ id: done.fine_tuned_model });

    // The adapter is in S3 under the job's prefix, in PEFT format, and it learned the task.
    const adapter = (done as unknown as { adapter: { key_prefix: string; files: { name: string; bytes: number }[] } }).adapter;
    expect(adapter.key_prefix).toMatch(new RegExp(`^projects/[^/]+/jobs/${created.id}/`));
    const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: adapter.key_prefix }))).Contents ?? []).map((o) => o.Key);
    expect(keys.sort()).toEqual([`${adapter.key_prefix}adapter_config.json`, `${adapter.key_prefix}adapter_model.safetensors`]);
    const config = JSON.parse((await objectBytes(`${adapter.key_prefix}adapter_config.json`)).toString());
    expect(config).toMatchObject({ peft_type: 'LORA', base_model_name_or_path: 'tiny-lora', r: 8, lora_alpha: 16, target_modules: ['lm_head'] });
    const loaded = parseAdapter(config, await objectBytes(`${adapter.key_prefix}adapter_model.safetensors`));
    const accuracy = (withAdapter: boolean) =>
      heldOut.filter((ex) => predict(ex.messages, withAdapter ? loaded : null).answer === ex.label).length / heldOut.length;
    const base = accuracy(false);
    const tuned = accuracy(true);
    expect(tuned).toBeGreaterThan(0.8);
    expect(tuned - base).toBeGreaterThan(0.4);
    process.stdout.write(`e2e thin path: ${Date.now() - t0} ms; held-out accuracy base=${base.toFixed(3)} adapter=${tuned.toFixed(3)} (n=${heldOut.length})\n`);
  }, 180_000);

  it('leaves a failed job with a readable error when the trainer rejects the data', async () => {
    // Valid chat JSONL, but with no user turn the tiny model has no input to learn from: the trainer exits non-zero.
    const lines = Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({ messages: [{ role: 'system', content: `ticket ${i}` }, { role: 'assistant', content: `label-${i}` }] }),
    );
    const file = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'bad-labels.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id });
    const done = await waitFor('the job to fail', async () => {
      const j = await client.fineTuning.jobs.retrieve(job.id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    });
    expect(done.status).toBe('failed');
    expect(done.error?.code).toBe('invalid_training_file');
    expect(done.error?.message).toMatch(/line 1/);
    expect(done.fine_tuned_model).toBeNull();
  }, 120_000);

  it('trains a DPO job (beta from the job) whose adapter answers with the preferred output', async () => {
    const split = makePreferenceSplit({ nTrain: 360, nHeldOut: 100, seed: 1 });
    const file = await client.files.create({ file: await toFile(Buffer.from(split.trainJsonl), 'prefs.jsonl'), purpose: 'fine-tune' });
    const created = await client.fineTuning.jobs.create({
      model: 'tiny-lora',
      training_file: file.id,
      seed: 1,
      method: { type: 'dpo', dpo: { hyperparameters: { beta: 1, learning_rate_multiplier: 0.2, n_epochs: 6 } } },
    });
    const done = await waitFor('the DPO job to finish', async () => {
      const job = await client.fineTuning.jobs.retrieve(created.id);
      return ['succeeded', 'failed', 'cancelled'].includes(job.status) ? job : null;
    });
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    const events = [];
    for await (const e of client.fineTuning.jobs.listEvents(created.id, { limit: 50 })) events.push(e.message);
    expect(events.some((m) => m.includes('DPO (beta 1, rpo_alpha 1, reference: the base model) on 360 pairs'))).toBe(true);
    const adapter = (done as unknown as { adapter: { key_prefix: string } }).adapter;
    const config = JSON.parse((await objectBytes(`${adapter.key_prefix}adapter_config.json`)).toString());
    const loaded = parseAdapter(config, await objectBytes(`${adapter.key_prefix}adapter_model.safetensors`));
    const preferred = (withAdapter: boolean) => split.heldOut.filter((e) => predict(e.messages.slice(0, 2), withAdapter ? loaded : null).answer === e.label).length / split.heldOut.length;
    expect(preferred(false)).toBeLessThanOrEqual(0.25);
    expect(preferred(true)).toBeGreaterThanOrEqual(0.75);
  }, 300_000);

  it("refuses at create, naming the line, an answer longer than the tiny model's limit (no container starts)", async () => {
    const lines = Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({ messages: [{ role: 'user', content: `ticket ${i}` }, { role: 'assistant', content: i === 7 ? 'x'.repeat(65) : `label-${i}` }] }),
    );
    const file = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'long-answer.jsonl'), purpose: 'fine-tune' });
    const err = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, param: 'training_file' });
    expect((err as Error).message).toMatch(new RegExp(`File ${file.id} line 8: the assistant answer is 65 tokens \\(UTF-8 bytes\\), over tiny-lora's limit of 64`));
    const jobs = await client.fineTuning.jobs.list();
    expect(jobs.data.filter((j) => j.training_file === file.id)).toHaveLength(0);
  }, 60_000);
});
