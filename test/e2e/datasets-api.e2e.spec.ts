import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import OpenAI, { APIError, toFile } from 'openai';
import { PrismaService } from '../../src/db/prisma.service';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';

/**
 * The native dataset API (report, stats, dry run, split), OpenAI's Uploads API through the official SDK (parts in
 * any order, retried complete, cancel, expiry by the worker's sweep, resume after a restart) and tenancy on every
 * dataset and upload endpoint.
 */
describe('datasets and uploads (e2e)', () => {
  jest.setTimeout(60_000);
  let app: TestApp;
  let a: OpenAI;
  let b: OpenAI;
  let keyB: string;
  let projectA: string;
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const data = makeTicketDataset({ n: 40, seed: 11 });

  async function objectsUnder(prefix: string): Promise<string[]> {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (res.Contents ?? []).map((o) => o.Key!);
  }

  const api = apiClient(() => ({ url: app.url, key: app.apiKey }), { prefix: '' });
  const call = (method: string, path: string, opts: { key?: string; json?: unknown; form?: FormData } = {}) => api(method, path, opts.form ?? opts.json, opts.key);
  const form = (text: string | Buffer, name = 'data.jsonl') => {
    const f = new FormData();
    f.append('file', new Blob([text]), name);
    return f;
  };

  beforeAll(async () => {
    app = await startTestApp({ UPLOAD_SWEEP_INTERVAL_SECONDS: '1' });
    a = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    const res = await call('POST', '/v1/admin/projects', { json: { name: 'Tenant B datasets' } });
    expect(res.status).toBe(201);
    keyB = res.body.api_key.value;
    b = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: keyB, maxRetries: 0 });
    projectA = (await call('GET', '/v1/project')).body.id;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('the dry run reports errors by line with the same codes as an upload, and stores nothing', async () => {
    const prisma = app.started.app.get(PrismaService);
    const rowsBefore = await prisma.dataset.count();
    const objectsBefore = await objectsUnder('projects/');
    const bad = data.split('\n');
    bad[2] = bad[2].replace('"role":"user"', '"role":"bot"');
    bad[4] = '{"messages": [';
    bad[6] = bad[6].replace('"content":"', '"content":"<|start|>');
    const res = await call('POST', '/v1/datasets/validate', { form: form(bad.join('\n')) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'dataset.validation', valid: false, error_count: 3, format: 'chat' });
    expect(res.body.errors.map((e: any) => [e.line, e.code])).toEqual([[3, 'unknown_role'], [5, 'invalid_json'], [7, 'harmony_special_token']]);
    const good = await call('POST', '/v1/datasets/validate?format=chat', { form: form(data) });
    expect(good.body).toMatchObject({ valid: true, error_count: 0, stats: { examples: 40, tokens: { tokenizer: 'o200k_harmony' } } });
    expect(good.body.stats.tokens.total).toBeGreaterThan(40 * 20);
    expect(good.body.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    const wrong = await call('POST', '/v1/datasets/validate?format=dpo', { form: form(data) });
    expect(wrong.body.errors[0]).toMatchObject({ line: 1, code: 'wrong_format' });
    expect(await prisma.dataset.count()).toBe(rowsBefore);
    expect(await objectsUnder('projects/')).toEqual(objectsBefore);
  });

  it('native upload keeps an invalid dataset with its report; a valid one has stats.examples and stats.tokens.total', async () => {
    const bad = data.replace('"role":"user"', '"role":"bot"');
    const invalid = await call('POST', '/v1/datasets', { form: form(bad, 'bad.jsonl') });
    expect(invalid.status).toBe(200);
    expect(invalid.body).toMatchObject({ object: 'dataset', status: 'invalid', report: { valid: false, error_count: 1, errors: [{ line: 1, path: 'messages[1].role', code: 'unknown_role' }] } });
    // As an OpenAI file it is in error, and status_details (a string, never null) says why.
    const asFile = await a.files.retrieve(invalid.body.id);
    expect(asFile).toMatchObject({ status: 'error', status_details: expect.stringContaining('bot') });
    const ok = await call('POST', '/v1/datasets', { form: form(data, 'tickets.jsonl') });
    expect(ok.body).toMatchObject({ status: 'ready', format: 'chat', stats: { examples: 40, tokens_pending: false } });
    expect(typeof ok.body.stats.tokens.total).toBe('number');
    expect(Object.keys(ok.body.stats.tokens.per_role).sort()).toEqual(['assistant', 'system', 'user']);
    const stats = await call('GET', `/v1/datasets/${ok.body.id}/stats?n_epochs=3`);
    expect(stats.body.estimated_trained_tokens).toBe(3 * ok.body.stats.tokens.total);
    // The same dataset is visible as an OpenAI file and the same bytes are one dataset.
    expect((await a.files.retrieve(ok.body.id)).bytes).toBe(Buffer.byteLength(data));
    const again = await a.files.create({ file: await toFile(Buffer.from(data), 'copy.jsonl'), purpose: 'fine-tune' });
    expect(again.id).toBe(ok.body.id);
  });

  it('split by seed creates two new datasets with exactly round(n * fraction) validation examples, the same every time', async () => {
    const src = await call('POST', '/v1/datasets', { form: form(makeTicketDataset({ n: 50, seed: 5 }), 'split-me.jsonl') });
    const one = await call('POST', `/v1/datasets/${src.body.id}/split`, { json: { validation_fraction: 0.2, seed: 42 } });
    expect(one.status).toBe(200);
    expect(one.body.train.stats.examples).toBe(40);
    expect(one.body.validation.stats.examples).toBe(10);
    expect(one.body.train.id).not.toBe(src.body.id);
    const two = await call('POST', `/v1/datasets/${src.body.id}/split`, { json: { validation_fraction: 0.2, seed: 42 } });
    expect([two.body.train.id, two.body.validation.id]).toEqual([one.body.train.id, one.body.validation.id]);
    const other = await call('POST', `/v1/datasets/${src.body.id}/split`, { json: { validation_fraction: 0.2, seed: 7 } });
    expect(other.body.validation.sha256).not.toBe(one.body.validation.sha256);
    // Every source line is in exactly one side.
    const text = async (id: string) => Buffer.from(await (await a.files.content(id)).arrayBuffer()).toString();
    const lines = (s: string) => s.split('\n').filter(Boolean).sort();
    expect(lines((await text(one.body.train.id)) + (await text(one.body.validation.id)))).toEqual(lines(await text(src.body.id)));
    const bad = await call('POST', `/v1/datasets/${src.body.id}/split`, { json: { validation_fraction: 0.001, seed: 1 } });
    expect(bad).toMatchObject({ status: 400, body: { error: { param: 'validation_fraction' } } });
  });

  it('Uploads API: parts in any order, complete returns a validated file, a retried complete returns the same', async () => {
    const bytes = Buffer.from(data);
    const cut = [0, 1000, 2500, bytes.length];
    const upload = await a.uploads.create({ bytes: bytes.length, filename: 'parts.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    expect(upload).toMatchObject({ object: 'upload', status: 'pending', bytes: bytes.length });
    expect(upload).not.toHaveProperty('file'); // absent until completed: the document does not allow null
    // Sent out of order; complete lists them in file order.
    const p2 = await a.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(cut[1], cut[2]), 'p') });
    const p3 = await a.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(cut[2], cut[3]), 'p') });
    const p1 = await a.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(cut[0], cut[1]), 'p') });
    expect(p1).toMatchObject({ object: 'upload.part', upload_id: upload.id });
    const md5 = createHash('md5').update(bytes).digest('hex');
    const done = await a.uploads.complete(upload.id, { part_ids: [p1.id, p2.id, p3.id], md5 });
    expect(done.status).toBe('completed');
    expect(done.file).toMatchObject({ object: 'file', bytes: bytes.length, purpose: 'fine-tune' });
    expect(Buffer.from(await (await a.files.content(done.file!.id)).arrayBuffer()).equals(bytes)).toBe(true);
    const again = await a.uploads.complete(upload.id, { part_ids: [p1.id, p2.id, p3.id] });
    expect(again.file!.id).toBe(done.file!.id);
    expect(await objectsUnder(`projects/${projectA}/uploads/${upload.id}/`)).toEqual([]);
  });

  it('Uploads API refuses wrong sizes, unknown parts and invalid content with a 4xx naming the field', async () => {
    const bytes = Buffer.from(data);
    const up = await a.uploads.create({ bytes: bytes.length + 1, filename: 'x.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const part = await a.uploads.parts.create(up.id, { data: await toFile(bytes, 'p') });
    await expect(a.uploads.complete(up.id, { part_ids: [part.id] })).rejects.toMatchObject({ status: 400, param: 'part_ids' });
    await expect(a.uploads.complete(up.id, { part_ids: ['part_nope'] })).rejects.toMatchObject({ status: 400, param: 'part_ids[0]' });
    await expect(a.uploads.create({ bytes: 0, filename: 'x', mime_type: 'text/jsonl', purpose: 'fine-tune' })).rejects.toMatchObject({ status: 400, param: 'bytes' });

    const bad = Buffer.from(data.replace('"role":"user"', '"role":"bot"'));
    const up2 = await a.uploads.create({ bytes: bad.length, filename: 'bad.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const part2 = await a.uploads.parts.create(up2.id, { data: await toFile(bad, 'p') });
    const err = (await a.uploads.complete(up2.id, { part_ids: [part2.id] }).catch((e: unknown) => e)) as APIError;
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/line 1, messages\[1\]\.role/);
    expect(await objectsUnder(`projects/${projectA}/uploads/${up2.id}/`)).toEqual([]);
  });

  it('cancel deletes the parts; an expired upload is swept by the worker and its parts deleted', async () => {
    const up = await a.uploads.create({ bytes: 10, filename: 'c.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    await a.uploads.parts.create(up.id, { data: await toFile(Buffer.from('0123456789'), 'p') });
    expect(await objectsUnder(`projects/${projectA}/uploads/${up.id}/`)).toHaveLength(1);
    expect((await a.uploads.cancel(up.id)).status).toBe('cancelled');
    expect(await objectsUnder(`projects/${projectA}/uploads/${up.id}/`)).toEqual([]);
    await expect(a.uploads.parts.create(up.id, { data: await toFile(Buffer.from('x'), 'p') })).rejects.toMatchObject({ status: 400, code: 'invalid_state' });

    const old = await a.uploads.create({ bytes: 10, filename: 'e.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    await a.uploads.parts.create(old.id, { data: await toFile(Buffer.from('0123456789'), 'p') });
    // Its time runs out (moved into the past rather than waiting an hour); the worker's sweep (every 1 s here) expires it.
    await app.started.app.get(PrismaService).upload.update({ where: { id: old.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const swept = await waitFor('the sweep to expire the upload', async () => {
      const res = await call('GET', `/v1/uploads/${old.id}`);
      return res.body.status === 'expired' ? res.body : null;
    }, 15_000, 200);
    expect(swept.parts).toEqual([]);
    expect(await objectsUnder(`projects/${projectA}/uploads/${old.id}/`)).toEqual([]);
  });

  it('tenancy: project B cannot read, list, get stats of, split or delete datasets of project A, nor see or touch its uploads', async () => {
    const mine = await call('POST', '/v1/datasets', { form: form(makeTicketDataset({ n: 30, seed: 99 }), 'a-only.jsonl') });
    const id = mine.body.id as string;
    for (const [method, path, json] of [
      ['GET', `/v1/datasets/${id}`],
      ['GET', `/v1/datasets/${id}/stats`],
      ['POST', `/v1/datasets/${id}/split`, { validation_fraction: 0.5, seed: 1 }],
      ['DELETE', `/v1/datasets/${id}`],
    ] as [string, string, unknown?][]) {
      const res = await call(method, path, { key: keyB, json });
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
    const listB = await call('GET', '/v1/datasets', { key: keyB });
    expect(listB.body.data.map((d: any) => d.id)).not.toContain(id);
    await expect(b.files.retrieve(id)).rejects.toMatchObject({ status: 404 });

    const up = await a.uploads.create({ bytes: 10, filename: 't.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const part = await a.uploads.parts.create(up.id, { data: await toFile(Buffer.from('0123456789'), 'p') });
    expect((await call('GET', `/v1/uploads/${up.id}`, { key: keyB })).status).toBe(404);
    await expect(b.uploads.parts.create(up.id, { data: await toFile(Buffer.from('x'), 'p') })).rejects.toMatchObject({ status: 404 });
    await expect(b.uploads.complete(up.id, { part_ids: [part.id] })).rejects.toMatchObject({ status: 404 });
    await expect(b.uploads.cancel(up.id)).rejects.toMatchObject({ status: 404 });
    expect((await call('GET', `/v1/uploads/${up.id}`)).body).toMatchObject({ status: 'pending', parts: [{ id: part.id }] });
    // Still A's after B's attempts.
    expect((await call('GET', `/v1/datasets/${id}`)).body.status).toBe('ready');
  });

  it('an upload resumes after a restart of the server: the parts sent before it still complete', async () => {
    const bytes = Buffer.from(makeTicketDataset({ n: 20, seed: 123 }));
    const up = await a.uploads.create({ bytes: bytes.length, filename: 'resume.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const p1 = await a.uploads.parts.create(up.id, { data: await toFile(bytes.subarray(0, 700), 'p') });
    const key = app.apiKey;
    await app.close();
    app = await startTestApp({ LORAPLANE_API_KEY: key });
    app.apiKey = key;
    a = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
    const status = await call('GET', `/v1/uploads/${up.id}`);
    expect(status.body.parts.map((p: any) => p.id)).toEqual([p1.id]);
    const p2 = await a.uploads.parts.create(up.id, { data: await toFile(bytes.subarray(700), 'p') });
    const done = await a.uploads.complete(up.id, { part_ids: [p1.id, p2.id] });
    expect(done.file!.bytes).toBe(bytes.length);
  });
});

describe('token statistics of a large file are counted by the worker after registration (e2e)', () => {
  jest.setTimeout(60_000);
  let app: TestApp;
  beforeAll(async () => {
    // A 1 KB inline budget makes any file "large".
    app = await startTestApp({ TOKENIZE_INLINE_BYTES: '1024' });
  });
  afterAll(async () => {
    await app?.close();
  });

  /** Dataset `id` registered with `examples` examples, then its tokens counted by the worker as a dry run of `data` counts them. */
  async function expectWorkerCountsLikeDryRun(id: string, data: string, examples: number) {
    const get = async () => (await (await fetch(`${app.url}/v1/datasets/${id}`, { headers: { authorization: `Bearer ${app.apiKey}` } })).json()) as Record<string, any>;
    expect((await get()).stats).toMatchObject({ examples });
    const f = new FormData();
    f.append('file', new Blob([data]), 'dry-run.jsonl');
    const dry = (await (await fetch(`${app.url}/v1/datasets/validate`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: f })).json()) as Record<string, any>;
    const counted = await waitFor('the worker to count tokens', async () => {
      const body = await get();
      return body.stats.tokens_pending === false ? body : null;
    }, 30_000, 200);
    expect(counted.stats.tokens).toEqual(dry.stats.tokens);
    expect(counted.stats.tokens.total).toBeGreaterThan(0);
  }

  it('registers at once with tokens_pending, then the worker fills stats.tokens with the same numbers a dry run counts', async () => {
    const data = makeTicketDataset({ n: 60, seed: 31 });
    const f = new FormData();
    f.append('file', new Blob([data]), 'big.jsonl');
    const created = (await (await fetch(`${app.url}/v1/datasets`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: f })).json()) as Record<string, any>;
    expect(created).toMatchObject({ status: 'ready', stats: { examples: 60, tokens_pending: true } });
    await expectWorkerCountsLikeDryRun(created.id, data, 60);
  });

  it('a streamed upload whose request length shows it is past the budget (no inline count) is counted by the worker alike', async () => {
    // Past 1 KB plus the 64 KiB a multipart envelope may add: the ingest counts nothing inline (DatasetsService.uploadOptions).
    const data = makeTicketDataset({ n: 600, seed: 33 });
    expect(Buffer.byteLength(data)).toBeGreaterThan(1024 + 64 * 1024);
    const sdk = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    const file = await sdk.files.create({ file: await toFile(Buffer.from(data), 'big-stream.jsonl'), purpose: 'fine-tune' });
    await expectWorkerCountsLikeDryRun(file.id, data, 600);
  });

  it('an upload assembled from parts, its size known to be past the budget, is counted by the worker alike', async () => {
    const data = makeTicketDataset({ n: 60, seed: 32 });
    const bytes = Buffer.from(data);
    const sdk = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    const upload = await sdk.uploads.create({ bytes: bytes.length, filename: 'big-parts.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const half = Math.floor(bytes.length / 2);
    const p1 = await sdk.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(0, half), 'p') });
    const p2 = await sdk.uploads.parts.create(upload.id, { data: await toFile(bytes.subarray(half), 'p') });
    const done = await sdk.uploads.complete(upload.id, { part_ids: [p1.id, p2.id] });
    await expectWorkerCountsLikeDryRun(done.file!.id, data, 60);
  });
});
