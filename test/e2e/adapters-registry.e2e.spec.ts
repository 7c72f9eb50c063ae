import { createHash } from 'node:crypto';
import OpenAI, { toFile } from 'openai';
import { parseAdapter, predict } from '../../jobs/tiny-lora/model';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { startTestApp, TestApp, waitFor } from '../support/app';

interface VersionView {
  id: string;
  adapter: string;
  version: number;
  served_name: string;
  base_model: string;
  rank: number;
  target_modules: string[];
  files: { name: string; bytes: number; sha256: string }[];
  lineage: { source: string; job_id: string; checkpoint_id: string | null; dataset_id: string };
  download?: { name: string; url: string }[];
}

/** A finished job becomes an immutable, numbered adapter version with its lineage and verified files. */
describe('adapter registry (e2e)', () => {
  let app: TestApp;
  let client: OpenAI;
  let other: OpenAI;
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 200, nHeldOut: 60, seed: 17 });

  const call = apiClient(() => ({ url: app.url, key: app.apiKey }));
  const api = (c: OpenAI, method: 'get' | 'post' | 'delete', route: string, body?: unknown) => call(method, route, body, c.apiKey ?? undefined);
  async function trainJob(seed: number) {
    const file = await client.files.create({ file: await toFile(Buffer.from(trainJsonl), 'tickets.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id, seed, method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 6 } } } });
    return waitFor('the job', async () => {
      const j = await client.fineTuning.jobs.retrieve(job.id);
      return j.status === 'succeeded' ? j : j.status === 'failed' ? Promise.reject(new Error(JSON.stringify(j.error))) : null;
    });
  }

  beforeAll(async () => {
    app = await startTestApp();
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    const res = await fetch(`${app.url}/v1/admin/projects`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'registry other' }) });
    other = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: ((await res.json()) as { api_key: { value: string } }).api_key.value, maxRetries: 0 });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('registers numbered versions with lineage, once per job, and serves their verified bytes', async () => {
    const job1 = await trainJob(1);
    const first = await api(client, 'post', '/adapters/tickets/versions', { job_id: job1.id });
    expect(first.status).toBe(201);
    const v1 = first.body as unknown as VersionView;
    expect(v1).toMatchObject({ adapter: 'tickets', version: 1, served_name: 'tickets@v1', base_model: 'tiny-lora', rank: 8, target_modules: ['lm_head'] });
    expect(v1.lineage).toMatchObject({ source: 'job', job_id: job1.id, checkpoint_id: null, dataset_id: job1.training_file, imported_from: null });
    expect(v1.files.map((f) => f.name).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

    // The same job again is the same version, not a second one.
    const again = await api(client, 'post', '/adapters/tickets/versions', { job_id: job1.id });
    expect(again.status).toBe(200);
    expect((again.body as unknown as VersionView).id).toBe(v1.id);

    const job2 = await trainJob(2);
    const v2 = (await api(client, 'post', '/adapters/tickets/versions', { job_id: job2.id })).body as unknown as VersionView;
    expect(v2.version).toBe(2);
    const listed = (await api(client, 'get', '/adapters/tickets/versions')).body as { data: VersionView[] };
    expect(listed.data.map((v) => v.version)).toEqual([2, 1]);
    // The default project is shared with other suites (their auto-deployed adapters): only this suite's row is asserted.
    const adapters = ((await api(client, 'get', '/adapters')).body as { data: { name: string; latest_version: number }[] }).data;
    expect(adapters.filter((a) => a.name === 'tickets')).toEqual([expect.objectContaining({ name: 'tickets', latest_version: 2 })]);

    // Download through the presigned URLs: the bytes hash to what the registry recorded, and they are a working adapter.
    const detail = (await api(client, 'get', '/adapters/tickets/versions/v1')).body as unknown as VersionView;
    const bytes: Record<string, Buffer> = {};
    for (const d of detail.download!) {
      bytes[d.name] = Buffer.from(await (await fetch(d.url)).arrayBuffer());
      expect(createHash('sha256').update(bytes[d.name]).digest('hex')).toBe(v1.files.find((f) => f.name === d.name)!.sha256);
    }
    const adapter = parseAdapter(JSON.parse(bytes['adapter_config.json'].toString()), bytes['adapter_model.safetensors']);
    const right = heldOut.filter((e) => predict(e.messages, adapter).answer === e.label).length;
    expect(right / heldOut.length).toBeGreaterThan(0.8);
  }, 180_000);

  it('refuses bad names, unfinished jobs and other projects, naming the field', async () => {
    expect((await api(client, 'post', '/adapters/Bad@Name/versions', { job_id: 'x' })).body).toMatchObject({ error: { param: 'adapter_name' } });
    const missing = await api(client, 'post', '/adapters/tickets/versions', { job_id: 'ftjob-nope' });
    expect(missing).toMatchObject({ status: 400, body: { error: { param: 'job_id' } } });
    const file = await client.files.create({ file: await toFile(Buffer.from(trainJsonl), 'queued.jsonl'), purpose: 'fine-tune' });
    const waiting = await client.fineTuning.jobs.create({ model: 'gpt-oss-20b', training_file: file.id });
    const notDone = await api(client, 'post', '/adapters/tickets/versions', { job_id: waiting.id });
    expect(notDone).toMatchObject({ status: 400, body: { error: { code: 'invalid_state', param: 'job_id' } } });
    await client.fineTuning.jobs.cancel(waiting.id);

    // Another project sees nothing of this one's registry and cannot register its jobs.
    expect((await api(other, 'get', '/adapters')).body).toMatchObject({ data: [] });
    expect((await api(other, 'get', '/adapters/tickets/versions')).status).toBe(404);
    expect((await api(other, 'get', '/adapters/tickets/versions/1')).status).toBe(404);
    const jobs = await client.fineTuning.jobs.list();
    const succeeded = jobs.data.find((j) => j.status === 'succeeded')!;
    expect((await api(other, 'post', '/adapters/stolen/versions', { job_id: succeeded.id })).status).toBe(400);

    // Deleting a version hides it; numbering never reuses it.
    expect((await api(client, 'delete', '/adapters/tickets/versions/2')).body).toMatchObject({ deleted: true });
    expect((await api(client, 'get', '/adapters/tickets/versions/2')).status).toBe(404);
  });
});
