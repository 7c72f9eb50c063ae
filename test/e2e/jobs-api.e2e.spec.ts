import OpenAI, { toFile } from 'openai';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { startTestApp, TestApp, waitFor } from '../support/app';

/**
 * The OpenAI job API beyond the thin path, with the official SDK where it has the call: idempotent create,
 * checkpoints, fine-tuned models (retrieve, delete), metadata filter and pagination, the live SSE stream, and the
 * cost estimate (dry run and on create) and actual cost. Trainers are fake-ok (tests/fixtures/fake-trainers.ts):
 * a real container that uploads a real adapter and three checkpoints through the presigned POST.
 */
describe('fine-tuning job API (e2e)', () => {
  let app: TestApp;
  let client: OpenAI;
  let fileId: string;
  let fileBytes: number;

  beforeAll(async () => {
    app = await startTestApp({ MODEL_CATALOG_FILE: writeFakeCatalog([{ id: 'gpu-twin', count: 2, minMemoryGb: 40 }]) });
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    const jsonl = makeTicketDataset({ n: 40, seed: 3 });
    fileBytes = Buffer.byteLength(jsonl);
    fileId = (await client.files.create({ file: await toFile(Buffer.from(jsonl), 'small.jsonl'), purpose: 'fine-tune' })).id;
  });
  afterAll(() => app?.close());

  const settled = (id: string) =>
    waitFor(`job ${id} to settle`, async () => {
      const j = await client.fineTuning.jobs.retrieve(id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 60_000);

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => rawApi(method, path, body, undefined, headers);
  const rawApi = apiClient(() => ({ url: app.url, key: app.apiKey }), { prefix: '' });

  it('returns the same job for a repeated Idempotency-Key and refuses the key with another body', async () => {
    const key = `k-${Date.now()}`;
    const body = { model: 'fake-ok', training_file: fileId, suffix: 'idem', metadata: { idem: key } };
    const [a, b] = await Promise.all([
      client.fineTuning.jobs.create(body, { headers: { 'Idempotency-Key': key } }),
      client.fineTuning.jobs.create(body, { headers: { 'Idempotency-Key': key } }),
    ]);
    expect(b.id).toBe(a.id);
    const again = await client.fineTuning.jobs.create({ metadata: { idem: key }, suffix: 'idem', training_file: fileId, model: 'fake-ok' }, { headers: { 'Idempotency-Key': key } });
    expect(again.id).toBe(a.id); // key order does not make another request
    const other = await api('POST', '/v1/fine_tuning/jobs', { ...body, suffix: 'other' }, { 'Idempotency-Key': key });
    expect(other.status).toBe(400);
    expect(other.body.error).toMatchObject({ param: 'Idempotency-Key' });
    expect(other.body.error.message).toContain(a.id);
    const bad = await api('POST', '/v1/fine_tuning/jobs', body, { 'Idempotency-Key': 'has space' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('Idempotency-Key');
    expect((await client.fineTuning.jobs.list({ metadata: { idem: key } })).data.map((j) => j.id)).toEqual([a.id]);
    await settled(a.id);
  });

  it('streams events live over SSE, resumes after Last-Event-ID, and ends with done', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'fake-ok', training_file: fileId });
    const res = await fetch(`${app.url}/v1/fine_tuning/jobs/${job.id}/events/stream`, { headers: { authorization: `Bearer ${app.apiKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await res.text(); // the stream ends by itself once the job has finished
    const frames = text.split('\n\n').filter(Boolean).map(parseFrame);
    const events = frames.filter((f) => f.event === 'event');
    expect(frames.at(-1)).toMatchObject({ event: 'done', data: { id: job.id, status: 'succeeded' } });
    // Oldest first, and exactly the stored events.
    const stored = [];
    for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 100 })) stored.push(e.id);
    expect(events.map((f) => f.id)).toEqual(stored.reverse());
    expect(events.filter((f) => f.data.type === 'metrics')).toHaveLength(3);

    const resumed = await fetch(`${app.url}/v1/fine_tuning/jobs/${job.id}/events/stream`, { headers: { authorization: `Bearer ${app.apiKey}`, 'last-event-id': events[2].id! } });
    const later = (await resumed.text()).split('\n\n').filter(Boolean).map(parseFrame).filter((f) => f.event === 'event');
    expect(later.map((f) => f.id)).toEqual(events.slice(3).map((f) => f.id));

    const missing = await fetch(`${app.url}/v1/fine_tuning/jobs/ftjob-nope/events/stream`, { headers: { authorization: `Bearer ${app.apiKey}` } });
    expect(missing.status).toBe(404);
  });

  it('answers the metric history as columns in pages, hands over to the stream with no gap or duplicate, and only to its project', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'fake-ok', training_file: fileId, suffix: 'history' });
    await settled(job.id);
    const stored = [];
    for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 100 })) stored.unshift(e); // oldest first
    const metrics = stored.filter((e) => e.type === 'metrics').map((e) => e.data as { step: number; train_loss: number; learning_rate: number });
    expect(metrics).toHaveLength(3);
    const route = `/v1/fine_tuning/jobs/${job.id}/metrics`;
    const all = (await api('GET', route)).body;
    expect(all).toMatchObject({ object: 'fine_tuning.job.metrics', job_id: job.id, has_more: false, last_event_id: stored.at(-1)!.id });
    expect(all.step).toEqual(metrics.map((m) => m.step));
    // float4 on the wire: the trainer's float32 values, to float32's precision.
    all.train_loss.forEach((v: number, i: number) => expect(v).toBeCloseTo(metrics[i].train_loss, 6));
    all.learning_rate.forEach((v: number, i: number) => expect(v).toBeCloseTo(metrics[i].learning_rate, 9));
    for (const column of ['epoch', 'valid_loss', 'tokens_per_second']) expect(all[column]).toHaveLength(3);

    const first = (await api('GET', `${route}?limit=2`)).body;
    expect(first).toMatchObject({ step: metrics.slice(0, 2).map((m) => m.step), has_more: true });
    const second = (await api('GET', `${route}?limit=2&after=${first.last_event_id}`)).body;
    expect(second).toMatchObject({ step: [metrics[2].step], has_more: false, last_event_id: stored.at(-1)!.id });
    // Where a page ends, the stream resumes: exactly the events after it, the next point among them.
    const read = async (lastEventId: string) => {
      const res = await fetch(`${app.url}/v1/fine_tuning/jobs/${job.id}/events/stream`, { headers: { authorization: `Bearer ${app.apiKey}`, 'last-event-id': lastEventId } });
      return (await res.text()).split('\n\n').filter(Boolean).map(parseFrame);
    };
    const after = stored.findIndex((e) => e.id === first.last_event_id);
    expect((await read(first.last_event_id)).filter((f) => f.event === 'event').map((f) => f.id)).toEqual(stored.slice(after + 1).map((e) => e.id));
    expect((await read(all.last_event_id)).map((f) => f.event)).toEqual(['done']);

    expect((await api('GET', `${route}?after=ftevent-nope`)).status).toBe(404);
    expect((await api('GET', `${route}?limit=100001`)).status).toBe(400);
    const other = (await api('POST', '/v1/admin/projects', { name: 'metrics other' })).body.api_key.value;
    const foreign = await rawApi('GET', route, undefined, other);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.param).toBe('fine_tuning_job_id');
  });

  it('records checkpoints, costs the run, and serves and deletes the fine-tuned model', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'fake-ok', training_file: fileId, suffix: 'ckpt' });
    const done = await settled(job.id);
    expect(done.status).toBe('succeeded');
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
    expect(checkpoints.data.map((c) => c.step_number)).toEqual([3, 2, 1]);
    expect(checkpoints.data[0]).toMatchObject({
      object: 'fine_tuning.job.checkpoint',
      fine_tuning_job_id: job.id,
      fine_tuned_model_checkpoint: `${done.fine_tuned_model}:ckpt-step-3`,
      metrics: { step: 3, train_loss: 1 / 3 },
    });
    const page1 = await client.fineTuning.jobs.checkpoints.list(job.id, { limit: 2 });
    expect(page1.data.map((c) => c.step_number)).toEqual([3, 2]);
    expect(page1.has_more).toBe(true);
    const page2 = await client.fineTuning.jobs.checkpoints.list(job.id, { limit: 2, after: page1.data[1].id });
    expect(page2.data.map((c) => c.step_number)).toEqual([1]);

    const raw = (await api('GET', `/v1/fine_tuning/jobs/${job.id}`)).body;
    expect(raw.cost.seconds).toBeGreaterThan(0);
    expect(raw.cost).toMatchObject({ gpus: 0, usd: 0 });
    expect(raw.estimated_cost).toMatchObject({ gpus: 0, n_epochs: raw.hyperparameters.n_epochs });

    const model = done.fine_tuned_model!;
    expect(await client.models.retrieve(model)).toMatchObject({ id: model, object: 'model' });
    expect((await client.models.list()).data.map((m) => m.id)).toContain(model);
    expect(await client.models.delete(model)).toEqual({ id: model, object: 'model', deleted: true });
    await expect(client.models.retrieve(model)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await client.models.list()).data.map((m) => m.id)).not.toContain(model);
    await expect(client.models.delete(model)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.models.delete('tiny-lora')).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    // The job and its history stay.
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('succeeded');
  });

  it('accepts every OpenAI create field through the SDK and echoes them', async () => {
    const job = await client.fineTuning.jobs.create({
      model: 'fake-ok',
      training_file: fileId,
      validation_file: fileId,
      suffix: 'all-fields',
      seed: 77,
      metadata: { purpose: 'fields' },
      integrations: [{ type: 'wandb', wandb: { project: 'lp' } }],
      hyperparameters: { n_epochs: 'auto', batch_size: 4, learning_rate_multiplier: 'auto' }, // deprecated form
    });
    expect(job).toMatchObject({
      validation_file: fileId,
      user_provided_suffix: 'all-fields',
      seed: 77,
      metadata: { purpose: 'fields' },
      integrations: [{ type: 'wandb', wandb: { project: 'lp' } }],
      hyperparameters: { batch_size: 4, learning_rate_multiplier: 1 },
      method: { type: 'supervised' },
    });
    expect(typeof job.hyperparameters.n_epochs).toBe('number'); // "auto" resolved at create
    const done = await settled(job.id);
    expect(done.fine_tuned_model).toBe(`ft:fake-ok:${done.fine_tuned_model!.split(':')[2]}:all-fields:${job.id.replace('ftjob-', '')}`);
  });

  it('filters by metadata and pages with after/limit', async () => {
    const tag = `t${Date.now()}`;
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await client.fineTuning.jobs.create({ model: 'fake-ok', training_file: fileId, metadata: { run: tag, part: String(i) } })).id);
    const byTag = await client.fineTuning.jobs.list({ metadata: { run: tag } });
    expect(byTag.data.map((j) => j.id)).toEqual([...made].reverse());
    const one = await client.fineTuning.jobs.list({ metadata: { run: tag, part: '1' } });
    expect(one.data.map((j) => j.id)).toEqual([made[1]]);
    const first = await client.fineTuning.jobs.list({ metadata: { run: tag }, limit: 2 });
    expect(first.data.map((j) => j.id)).toEqual([made[2], made[1]]);
    expect(first.has_more).toBe(true);
    const rest = await client.fineTuning.jobs.list({ metadata: { run: tag }, limit: 2, after: made[1] });
    expect(rest.data.map((j) => j.id)).toEqual([made[0]]);
    expect(rest.has_more).toBe(false);
    for (const id of made) await settled(id);
  });

  it('estimates tokens, GPU hours and dollars in a dry run and on create', async () => {
    const dry = await api('POST', '/v1/fine_tuning/jobs/estimate', { model: 'gpu-twin', training_file: fileId, hyperparameters: { n_epochs: 2 } });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ object: 'fine_tuning.job.estimate', model: 'gpu-twin', n_epochs: 2, gpus: 2, tokens_per_second_per_gpu: 1000, usd: null });
    const fromBytes = Math.ceil(fileBytes / 4);
    expect(dry.body.dataset_tokens).toBe(dry.body.tokens_source === 'bytes_estimate' ? fromBytes : dry.body.dataset_tokens);
    expect(dry.body.trained_tokens).toBe(dry.body.dataset_tokens * 2);
    expect(dry.body.gpu_hours).toBeCloseTo(dry.body.trained_tokens / 1000 / 3600, 5);

    // With a host that can hold the model, its price makes the dollars; the cheapest such host wins.
    const names = [`price-a-${Date.now()}`, `price-b-${Date.now()}`];
    const hosts = [];
    for (const [name, price, mem] of [[names[0], 2.5, 80], [names[1], 0.5, 24]] as const) {
      const res = await api('POST', '/v1/admin/gpu_hosts', { name, engine_url: 'unix:///var/run/nowhere.sock', gpus: [{ index: 0, model: 'H100', memory_gb: mem }, { index: 1, model: 'H100', memory_gb: mem }], usd_per_gpu_hour: price, enabled: true });
      expect(res.status).toBe(201);
      hosts.push(res.body.id);
    }
    try {
      const priced = await api('POST', '/v1/fine_tuning/jobs/estimate', { model: 'gpu-twin', training_file: fileId, hyperparameters: { n_epochs: 2 } });
      expect(priced.body.usd_per_gpu_hour).toBe(2.5); // the 24 GB host is cheaper but too small
      expect(priced.body.usd).toBeCloseTo(priced.body.gpu_hours * 2.5, 3);

      const bad = await api('POST', '/v1/fine_tuning/jobs/estimate', { model: 'gpu-twin', training_file: 'file-nope' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.param).toBe('training_file');

      const created = await api('POST', '/v1/fine_tuning/jobs', { model: 'tiny-lora', training_file: fileId, hyperparameters: { n_epochs: 3 } });
      expect(created.body.estimated_cost).toMatchObject({ n_epochs: 3, gpus: 0, usd: 0 });
      expect(created.body.estimated_cost.trained_tokens).toBe(created.body.estimated_cost.dataset_tokens * 3);
      await settled(created.body.id);
    } finally {
      for (const id of hosts) await api('DELETE', `/v1/admin/gpu_hosts/${id}`);
    }
  });
});

function parseFrame(frame: string): { id?: string; event?: string; data: any } {
  const out: { id?: string; event?: string; data: any } = { data: null };
  for (const line of frame.split('\n')) {
    const [field, ...rest] = line.split(':');
    const value = rest.join(':').replace(/^ /, '');
    if (field === 'id') out.id = value;
    else if (field === 'event') out.event = value;
    else if (field === 'data') out.data = JSON.parse(value);
  }
  return out;
}
