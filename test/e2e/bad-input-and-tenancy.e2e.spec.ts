import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import OpenAI, { APIError, toFile } from 'openai';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient, ApiResponse } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3 } from '../support/app';

/**
 * Bad input gets a 4xx in OpenAI's envelope naming the field, and leaves nothing stored; one project never sees
 * another's files or jobs; a missing or wrong key is a 401. All through the official SDK where it can express the
 * request, raw fetch where it cannot (a multipart form without `purpose`).
 */
describe('bad input, auth and tenancy (e2e)', () => {
  let app: TestApp;
  let a: OpenAI;
  let b: OpenAI;
  let projectA: string;
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const dataset = makeTicketDataset({ n: 20, seed: 3 });

  async function expectApiError(promise: Promise<unknown>, status: number, param: string | null, code?: string): Promise<APIError> {
    const err = await promise.then(
      () => { throw new Error('expected the call to fail'); },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(APIError);
    const apiError = err as APIError;
    expect({ status: apiError.status, param: apiError.param ?? null }).toEqual({ status, param });
    if (code) expect(apiError.code).toBe(code);
    expect(typeof (apiError.error as { message?: unknown }).message).toBe('string');
    return apiError;
  }

  async function objectsUnder(prefix: string): Promise<string[]> {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (res.Contents ?? []).map((o) => o.Key!);
  }

  beforeAll(async () => {
    app = await startTestApp();
    a = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    // A second tenant, created through the admin API with the bootstrap key.
    const res = await fetch(`${app.url}/v1/admin/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Tenant B' }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; api_key: { value: string; scopes: string[] } };
    expect(created.api_key.scopes).toEqual(['project']);
    b = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: created.api_key.value, maxRetries: 0 });
    projectA = ((await (await fetch(`${app.url}/v1/project`, { headers: { authorization: `Bearer ${app.apiKey}` } })).json()) as { id: string }).id;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers 401 in the envelope without a key or with a wrong one', async () => {
    const none = await fetch(`${app.url}/v1/files`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: expect.objectContaining({ code: 'unauthorized', type: 'invalid_request_error', param: null }) });
    const wrong = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: 'lp_wrongwrongwrongwrongwrong', maxRetries: 0 });
    await expectApiError(wrong.files.list(), 401, null, 'unauthorized');
    // A project key cannot use the admin API.
    await expect(
      b.post('/admin/projects', { body: { name: 'nope' } }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it("lets a project key revoke or cap its peers but not the operator's key, nor itself, nor anything once it is capped", async () => {
    const call = async (key: string, method: string, route: string, body?: unknown) => {
      const res = await fetch(`${app.url}/v1${route}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const ci = (await call(app.apiKey, 'POST', '/api_keys', { name: 'ci' })).body;
    const peer = (await call(app.apiKey, 'POST', '/api_keys', { name: 'peer' })).body;
    const operator = (await call(ci.value, 'GET', '/api_keys')).body.data.find((k: { scopes: string[] }) => k.scopes.includes('*'));
    expect(operator).toBeDefined();
    for (const [method, route, body] of [['DELETE', `/api_keys/${operator.id}`, undefined], ['PUT', `/api_keys/${operator.id}/rate_limits`, { rpm: 1, tpm: null }]] as const) {
      const refused = await call(ci.value, method, route, body);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'forbidden', type: 'permission_error', param: 'key_id' });
      expect(refused.body.error.message).toMatch(new RegExp(`${operator.id} holds scopes this key lacks \\(\\*\\)`));
    }
    // Nothing changed: the operator's key works, uncapped.
    expect((await call(app.apiKey, 'GET', `/api_keys/${operator.id}/rate_limits`)).body).toMatchObject({ rpm: null, tpm: null });
    // Peers and the operator over a project key: as before.
    expect((await call(ci.value, 'PUT', `/api_keys/${peer.id}/rate_limits`, { rpm: 5, tpm: null })).status).toBe(200);
    expect((await call(ci.value, 'DELETE', `/api_keys/${peer.id}`)).status).toBe(200);
    // A key may not limit itself (it could not lift the limit again), and a key under limits manages no keys: it
    // could lift them, or make a key without any.
    const self = await call(ci.value, 'PUT', `/api_keys/${ci.id}/rate_limits`, { rpm: 5, tpm: null });
    expect(self.body.error).toMatchObject({ code: 'forbidden', param: 'key_id', message: expect.stringMatching(/may not set its own limits/) });
    expect((await call(app.apiKey, 'PUT', `/api_keys/${ci.id}/rate_limits`, { rpm: 5, tpm: null })).status).toBe(200);
    const other = (await call(app.apiKey, 'POST', '/api_keys', { name: 'other' })).body;
    for (const [method, route, body] of [['POST', '/api_keys', { name: 'unlimited' }], ['DELETE', `/api_keys/${other.id}`, undefined], ['PUT', `/api_keys/${other.id}/rate_limits`, { rpm: 1, tpm: null }]] as const) {
      const refused = await call(ci.value, method, route, body);
      expect({ route: `${method} ${route}`, status: refused.status, code: refused.body.error?.code }).toEqual({ route: `${method} ${route}`, status: 403, code: 'forbidden' });
      expect(refused.body.error.message).toMatch(/has rate limits of its own/);
    }
    expect((await call(app.apiKey, 'GET', '/api_keys')).body.data.map((k: { name: string }) => k.name)).not.toContain('unlimited');
    expect((await call(app.apiKey, 'GET', `/api_keys/${other.id}/rate_limits`)).body).toMatchObject({ rpm: null, tpm: null });
    // Lifted by a key without limits, it manages keys again.
    expect((await call(app.apiKey, 'PUT', `/api_keys/${ci.id}/rate_limits`, { rpm: null, tpm: null })).status).toBe(200);
    expect((await call(ci.value, 'DELETE', `/api_keys/${other.id}`)).status).toBe(200);
    expect((await call(app.apiKey, 'DELETE', `/api_keys/${ci.id}`)).status).toBe(200);
    // Another project's key is not found at all (not forbidden: its existence is not the caller's to know).
    const tenantB = (await b.get('/api_keys')) as { data: Array<{ id: string }> };
    expect((await call(app.apiKey, 'DELETE', `/api_keys/${tenantB.data[0].id}`)).status).toBe(404);
  });

  it("lets the operator list every project and issue a key into one whose keys were all revoked; a project key can do neither", async () => {
    // As the operator unless another key is given.
    const call = apiClient(() => ({ url: app.url, key: app.apiKey }));
    const created = (await call('POST', '/admin/projects', { name: 'Locked out' })).body;
    const only = created.api_key;
    // The tenant's one key leaks; the operator revokes it: the project has no key left.
    expect((await call('DELETE', `/admin/api_keys/${only.id}`)).status).toBe(200);
    expect((await call('GET', '/files', undefined, only.value)).status).toBe(401);
    const listed = await call('GET', '/admin/projects?limit=100');
    expect(listed.status).toBe(200);
    const row = listed.body.data.find((p: { id: string }) => p.id === created.id);
    expect(row).toMatchObject({ object: 'project', name: 'Locked out', slug: created.slug, api_keys: 0, rate_limits: { rpm: null, tpm: null } });
    expect(listed.body.data.find((p: { id: string }) => p.id === projectA).api_keys).toBeGreaterThanOrEqual(1);
    // Newest first, and a cursor that walks them all once.
    expect(listed.body.data[0].id).toBe(created.id);
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: ApiResponse = await call('GET', `/admin/projects?limit=1${after ? `&after=${after}` : ''}`);
      seen.push(...page.body.data.map((p: { id: string }) => p.id));
      after = page.body.has_more ? page.body.last_id : null;
    } while (after);
    expect(seen).toEqual(listed.body.data.map((p: { id: string }) => p.id));

    const issued = await call('POST', `/admin/projects/${created.id}/api_keys`, { name: 'after the leak' });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ object: 'api_key', name: 'after the leak', scopes: ['project'] });
    const mine = await call('GET', '/project', undefined, issued.body.value);
    expect(mine.body).toMatchObject({ id: created.id, scopes: ['project'] });
    expect((await call('GET', '/admin/projects?limit=100')).body.data.find((p: { id: string }) => p.id === created.id).api_keys).toBe(1);

    // Bad input names the field; a project key is refused both routes.
    expect((await call('POST', '/admin/projects/proj_nope/api_keys', { name: 'x' })).body.error).toMatchObject({ code: 'not_found', param: 'project_id' });
    expect((await call('POST', `/admin/projects/${created.id}/api_keys`, { name: '' })).body.error).toMatchObject({ code: 'invalid_request', param: 'name' });
    expect((await call('GET', '/admin/projects?after=proj_nope')).body.error).toMatchObject({ code: 'not_found', param: 'after' });
    const tenant = issued.body.value as string;
    expect((await call('GET', '/admin/projects', undefined, tenant)).status).toBe(403);
    expect((await call('POST', `/admin/projects/${projectA}/api_keys`, { name: 'mine now' }, tenant)).status).toBe(403);
  });

  it('rejects empty, non-JSONL and invalid uploads, naming the field and storing nothing', async () => {
    const before = await objectsUnder(`projects/${projectA}/files/`);
    const empty = await expectApiError(a.files.create({ file: await toFile(Buffer.alloc(0), 'empty.jsonl'), purpose: 'fine-tune' }), 400, 'file', 'invalid_file');
    expect(empty.message).toMatch(/no examples/);
    const csv = await expectApiError(a.files.create({ file: await toFile(Buffer.from('a,b\n1,2\n'), 'data.csv'), purpose: 'fine-tune' }), 400, 'file', 'invalid_file');
    expect(csv.message).toMatch(/line 1/);
    const badRole = dataset.replace('"role":"user"', '"role":"bot"');
    const role = await expectApiError(a.files.create({ file: await toFile(Buffer.from(badRole), 'bad-role.jsonl'), purpose: 'fine-tune' }), 400, 'file', 'invalid_file');
    expect(role.message).toMatch(/line 1, messages\[1\]\.role: unknown role "bot"/);
    await expectApiError(a.files.create({ file: await toFile(Buffer.from(dataset), 'x.jsonl'), purpose: 'nonsense' as 'fine-tune' }), 400, 'purpose');

    // The SDK always sends purpose; a raw form without it.
    const form = new FormData();
    form.append('file', new Blob([dataset]), 'x.jsonl');
    const res = await fetch(`${app.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: form });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: expect.objectContaining({ param: 'purpose', message: "Missing required parameter: 'purpose'" }) });

    expect(await objectsUnder(`projects/${projectA}/files/`)).toEqual(before);
    // Exact names: other suites upload to the same project at the same time (e.g. `sweep-<random>x.jsonl`).
    const refused = new Set(['empty.jsonl', 'data.csv', 'bad-role.jsonl', 'x.jsonl']);
    expect((await a.files.list()).data.filter((f) => refused.has(f.filename))).toEqual([]);
  });

  it('stores identical bytes once and returns the same file', async () => {
    const first = await a.files.create({ file: await toFile(Buffer.from(dataset), 'one.jsonl'), purpose: 'fine-tune' });
    const second = await a.files.create({ file: await toFile(Buffer.from(dataset), 'two.jsonl'), purpose: 'fine-tune' });
    expect(second.id).toBe(first.id);
    const copies = await objectsUnder(`projects/${projectA}/files/`);
    expect(copies.filter((k) => k.includes(first.id))).toHaveLength(1);
    expect(copies.length).toBe(new Set(copies).size);
  });

  it('rejects unknown models, missing files and other projects files, naming the field', async () => {
    const file = await a.files.create({ file: await toFile(Buffer.from(dataset), 'ok.jsonl'), purpose: 'fine-tune' });
    await expectApiError(a.fineTuning.jobs.create({ model: 'gpt-5-turbo', training_file: file.id }), 400, 'model', 'unknown_model');
    await expectApiError(a.fineTuning.jobs.create({ model: 'tiny-lora', training_file: 'file-doesnotexist' }), 400, 'training_file');
    await expectApiError(b.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id }), 400, 'training_file');
    await expectApiError(a.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id, suffix: 'x'.repeat(65) }), 400, 'suffix');
    await expectApiError(
      a.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id, method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: -1 } } } }),
      400,
      'method.supervised.hyperparameters.n_epochs',
    );
    const rank = await expectApiError(a.post('/fine_tuning/jobs', { body: { model: 'tiny-lora', training_file: file.id, lora: { r: 128 } } }), 400, 'lora.r');
    expect(rank.message).toMatch(/limit of 64/);
    // A DPO method needs DPO examples.
    await expectApiError(a.fineTuning.jobs.create({ model: 'tiny-lora', training_file: file.id, method: { type: 'dpo' } }), 400, 'training_file', 'invalid_file');
  });

  it("never shows one project's files or jobs to another", async () => {
    const file = await a.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 15, seed: 99 })), 'private.jsonl'), purpose: 'fine-tune' });
    // gpt-oss-20b waits for a GPU host that does not exist, so the job stays open for the checks below.
    const job = await a.fineTuning.jobs.create({ model: 'gpt-oss-20b', training_file: file.id });

    await expectApiError(b.files.retrieve(file.id), 404, 'file_id', 'not_found');
    await expectApiError(b.files.content(file.id), 404, 'file_id');
    await expectApiError(b.files.delete(file.id), 404, 'file_id');
    expect((await b.files.list()).data.map((f) => f.id)).not.toContain(file.id);
    await expectApiError(b.fineTuning.jobs.retrieve(job.id), 404, 'fine_tuning_job_id');
    await expectApiError(b.fineTuning.jobs.cancel(job.id), 404, 'fine_tuning_job_id');
    await expectApiError(b.fineTuning.jobs.listEvents(job.id), 404, 'fine_tuning_job_id');
    expect((await b.fineTuning.jobs.list()).data.map((j) => j.id)).not.toContain(job.id);

    // In use by an open job: not deletable (400, not 409 which the SDK would retry).
    const inUse = await expectApiError(a.files.delete(file.id), 400, 'file_id', 'dataset_in_use');
    expect((inUse.error as { job_ids: string[] }).job_ids).toEqual([job.id]);
    const cancelled = await a.fineTuning.jobs.cancel(job.id);
    expect(cancelled.status).toBe('cancelled');
    await expectApiError(a.fineTuning.jobs.cancel(job.id), 400, 'fine_tuning_job_id', 'invalid_state');
    expect(await a.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
    await expectApiError(a.files.retrieve(file.id), 404, 'file_id');
  });

  it('lists jobs with cursor pagination and a metadata filter', async () => {
    const file = await a.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 12, seed: 5 })), 'list.jsonl'), purpose: 'fine-tune' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await a.fineTuning.jobs.create({ model: 'gpt-oss-20b', training_file: file.id, metadata: { batch: 'pager', i: String(i) } });
      ids.push(job.id);
      await a.fineTuning.jobs.cancel(job.id);
    }
    const seen: string[] = [];
    for await (const job of a.fineTuning.jobs.list({ limit: 1, metadata: { batch: 'pager' } } as never)) seen.push(job.id);
    expect(seen).toEqual([...ids].reverse());
    const one = await a.fineTuning.jobs.list({ metadata: { i: '1' } } as never);
    expect(one.data.map((j) => j.id)).toEqual([ids[1]]);
  });
});
