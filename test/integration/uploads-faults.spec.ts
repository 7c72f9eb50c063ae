import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { DomainError } from '../../src/common/domain-error';
import { DatasetsService } from '../../src/datasets/datasets.service';
import { UploadsService } from '../../src/datasets/uploads.service';
import { ObjectStore } from '../../src/storage/object-store';
import { PrismaService } from '../../src/db/prisma.service';
import { ProjectsService } from '../../src/projects/projects.service';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { requireEnv, startTestApp, TestApp, testS3 } from '../support/app';

/** An upload that fails midway, or meets an unavailable store, leaves no dataset row and no object behind. */
describe('dataset uploads under faults (integration)', () => {
  let app: TestApp;
  let datasets: DatasetsService;
  let prisma: PrismaService;
  let projectId: string;
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');

  async function keys(prefix: string) {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (res.Contents ?? []).map((o) => o.Key!);
  }

  beforeAll(async () => {
    app = await startTestApp({ LORAPLANE_ROLE: 'api' });
    datasets = app.started.app.get(DatasetsService);
    prisma = app.started.app.get(PrismaService);
    projectId = (await app.started.app.get(ProjectsService).create('faults')).project.id;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('streams a large upload to S3 in parts and registers it once', async () => {
    // ~20 MB: several multipart parts, never held whole (the ingest is a pass-through transform).
    const line = makeTicketDataset({ n: 1, seed: 1 });
    const count = Math.ceil((20 * 1024 * 1024) / line.length);
    let sent = 0;
    const body = new Readable({
      read() {
        const batch = Math.min(500, count - sent);
        if (batch <= 0) return this.push(null);
        // Vary each line so no two are identical bytes (the file is content-addressed as a whole anyway).
        this.push(Array.from({ length: batch }, (_, i) => line.replace('"content":"', `"content":"#${sent + i} `)).join(''));
        sent += batch;
      },
    });
    const staged = await datasets.stage(projectId, 'big.jsonl', body);
    expect(staged.report.valid).toBe(true);
    expect(staged.report.examples).toBe(count);
    expect(staged.bytes).toBeGreaterThan(20 * 1024 * 1024);
    const saved = await datasets.commit(staged, 'fine-tune');
    expect(Number(saved.bytes)).toBe(staged.bytes);
    expect(await keys(`projects/${projectId}/files/${saved.id}`)).toHaveLength(1);
  });

  it('leaves nothing behind when the client stream breaks midway', async () => {
    const before = await keys(`projects/${projectId}/files/`);
    const rows = await prisma.dataset.count({ where: { projectId } });
    let chunks = 0;
    const broken = new Readable({
      read() {
        if (++chunks > 40) return this.destroy(new Error('client went away'));
        this.push(makeTicketDataset({ n: 200, seed: chunks }));
      },
    });
    await expect(datasets.stage(projectId, 'cut.jsonl', broken)).rejects.toThrow(/client went away/);
    expect(await keys(`projects/${projectId}/files/`)).toEqual(before);
    expect(await prisma.dataset.count({ where: { projectId } })).toBe(rows);
  });

  it('answers 503 with Retry-After when object storage is down, registering nothing', async () => {
    const down = await startTestApp({ LORAPLANE_ROLE: 'api', S3_ENDPOINT: 'http://127.0.0.1:1', S3_CREATE_BUCKET: 'false' }).catch((e: unknown) => e);
    // The app refuses to start without its bucket; the service itself is exercised with a store that is down.
    expect(down).toBeInstanceOf(DomainError);
    expect((down as DomainError).code).toBe('service_unavailable');

    const store = app.started.app.get(DatasetsService) as unknown as { store: { put: () => Promise<void> } };
    const realPut = store.store.put;
    store.store.put = async () => {
      throw new DomainError('service_unavailable', 'Object storage is unavailable (upload): try again shortly', null, { retryAfterSeconds: 5 });
    };
    try {
      const form = new FormData();
      form.append('file', new Blob([makeTicketDataset({ n: 12, seed: 42 })]), 'x.jsonl');
      form.append('purpose', 'fine-tune');
      const res = await fetch(`${app.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}` }, body: form });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('service_unavailable');
    } finally {
      store.store.put = realPut;
    }
    expect(await prisma.dataset.count({ where: { filename: 'x.jsonl', sha256: { not: '' }, project: { slug: 'default' }, createdAt: { gt: new Date(Date.now() - 5000) } } })).toBe(0);
  });
});

/** The native dataset API and the Uploads API under the same faults: 503 + Retry-After, nothing half-registered, retries work. */
describe('native datasets and Uploads API under faults (integration)', () => {
  let app: TestApp;
  let prisma: PrismaService;
  let store: ObjectStore;
  let projectId: string;
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const data = Buffer.from(makeTicketDataset({ n: 20, seed: 8 }));

  async function keys(prefix: string) {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (res.Contents ?? []).map((o) => o.Key!);
  }
  async function call(method: string, path: string, body?: FormData | object) {
    const res = await fetch(`${app.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${app.apiKey}`, ...(body && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}) },
      body: body instanceof FormData ? body : body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, any> };
  }
  const form = (field: string, bytes: Buffer) => {
    const f = new FormData();
    // A name no other suite uses: suites share the default project.
    f.append(field, new Blob([bytes]), 'uploads-faults-native.jsonl');
    return f;
  };
  /** Object storage down for `fn`: every call of `method` fails the way ObjectStore reports an unreachable store. */
  async function withStoreDown<T>(method: 'put' | 'get', fn: () => Promise<T>): Promise<T> {
    const real = store[method];
    (store as any)[method] = async () => {
      throw new DomainError('service_unavailable', `Object storage is unavailable (${method}): try again shortly`, null, { retryAfterSeconds: 5 });
    };
    try {
      return await fn();
    } finally {
      (store as any)[method] = real;
    }
  }

  beforeAll(async () => {
    app = await startTestApp({ LORAPLANE_ROLE: 'api' });
    prisma = app.started.app.get(PrismaService);
    store = app.started.app.get(ObjectStore);
    projectId = (await (await fetch(`${app.url}/v1/project`, { headers: { authorization: `Bearer ${app.apiKey}` } })).json() as { id: string }).id;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('native upload with S3 down: 503 + Retry-After, no dataset row; the retry registers it once', async () => {
    const rows = await prisma.dataset.count({ where: { projectId } });
    const down = await withStoreDown('put', () => call('POST', '/v1/datasets', form('file', data)));
    expect({ status: down.status, retryAfter: down.retryAfter, code: down.body.error.code }).toEqual({ status: 503, retryAfter: '5', code: 'service_unavailable' });
    expect(await prisma.dataset.count({ where: { projectId } })).toBe(rows);
    const first = await call('POST', '/v1/datasets', form('file', data));
    const again = await call('POST', '/v1/datasets', form('file', data));
    expect(first.body.id).toBe(again.body.id);
    expect(await prisma.dataset.count({ where: { projectId } })).toBe(rows + 1);
    expect(await keys(`projects/${projectId}/files/${first.body.id}`)).toHaveLength(1);
  });

  it('a part sent while S3 is down gets a 503 and no part; sent again it is stored; a complete with S3 down leaves the upload pending and retryable', async () => {
    const up = await call('POST', '/v1/uploads', { bytes: data.length, filename: 'f.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    expect(up.status).toBe(200);
    const failed = await withStoreDown('put', () => call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', data)));
    expect({ status: failed.status, retryAfter: failed.retryAfter }).toEqual({ status: 503, retryAfter: '5' });
    expect(await prisma.uploadPart.count({ where: { uploadId: up.body.id } })).toBe(0);
    const part = await call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', data));
    expect(part.status).toBe(200);
    const stuck = await withStoreDown('get', () => call('POST', `/v1/uploads/${up.body.id}/complete`, { part_ids: [part.body.id] }));
    expect(stuck.status).toBe(503);
    expect(await prisma.upload.findUnique({ where: { id: up.body.id } })).toMatchObject({ status: 'pending', leaseId: null, leaseUntil: null, fileId: null });
    const done = await call('POST', `/v1/uploads/${up.body.id}/complete`, { part_ids: [part.body.id] });
    expect(done.body).toMatchObject({ status: 'completed', file: { bytes: data.length } });
    expect(await keys(`projects/${projectId}/uploads/${up.body.id}/`)).toEqual([]);
  });

  it('parts are capped by the bytes the upload declared: the part that would pass them is refused and leaves nothing', async () => {
    const up = await call('POST', '/v1/uploads', { bytes: 1000, filename: 'capped.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const tooBig = await call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', Buffer.alloc(1001, 0x61)));
    expect([tooBig.status, tooBig.body.error.code, tooBig.body.error.param]).toEqual([413, 'payload_too_large', 'data']);
    expect(tooBig.body.error.message).toMatch(/bytes=1000/);
    const first = await call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', Buffer.alloc(600, 0x61)));
    expect(first.status).toBe(200);
    const over = await call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', Buffer.alloc(401, 0x61)));
    expect([over.status, over.body.error.message]).toEqual([413, expect.stringMatching(/400 more bytes/)]);
    // Two parts side by side that each fit the room but not together: one of them is refused under the row lock.
    const side = await Promise.all([0, 1].map(() => call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', Buffer.alloc(300, 0x61)))));
    expect(side.map((r) => r.status).sort()).toEqual([200, 413]);
    expect(await prisma.uploadPart.aggregate({ where: { uploadId: up.body.id }, _sum: { bytes: true } })).toEqual({ _sum: { bytes: 900n } });
    expect(await keys(`projects/${projectId}/uploads/${up.body.id}/`)).toHaveLength(2);
  });

  it('a complete that crashed holds the upload only until its lease lapses: then a retry completes it, or the sweep expires it with its parts', async () => {
    const uploads = app.started.app.get(UploadsService);
    const crashed = async () => {
      const up = await call('POST', '/v1/uploads', { bytes: data.length, filename: 'crash.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
      const part = await call('POST', `/v1/uploads/${up.body.id}/parts`, form('data', data));
      // What a process killed in the middle of complete leaves: a lease nobody renews.
      await prisma.upload.update({ where: { id: up.body.id }, data: { leaseId: 'dead-process', leaseUntil: new Date(Date.now() + 60_000) } });
      return { id: up.body.id as string, partId: part.body.id as string };
    };
    const a = await crashed();
    const busy = await call('POST', `/v1/uploads/${a.id}/complete`, { part_ids: [a.partId] });
    expect([busy.status, busy.body.error.code]).toEqual([400, 'invalid_state']);
    await prisma.upload.update({ where: { id: a.id }, data: { leaseUntil: new Date(Date.now() - 1) } }); // the lease lapses
    const retried = await call('POST', `/v1/uploads/${a.id}/complete`, { part_ids: [a.partId] });
    expect(retried.body).toMatchObject({ status: 'completed', file: { bytes: data.length } });
    expect(await keys(`projects/${projectId}/uploads/${a.id}/`)).toEqual([]);

    const b = await crashed();
    await prisma.upload.update({ where: { id: b.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await uploads.sweepExpired()).toBe(0); // its lease is still running: the holder may yet finish
    await prisma.upload.update({ where: { id: b.id }, data: { leaseUntil: new Date(Date.now() - 1) } });
    expect(await uploads.sweepExpired()).toBe(1);
    expect(await prisma.upload.findUnique({ where: { id: b.id } })).toMatchObject({ status: 'expired', leaseId: null });
    expect(await prisma.uploadPart.count({ where: { uploadId: b.id } })).toBe(0);
    expect(await keys(`projects/${projectId}/uploads/${b.id}/`)).toEqual([]);
  });

  it('a part cut off midway leaves no part row and no object', async () => {
    const up = await call('POST', '/v1/uploads', { bytes: 10_000_000, filename: 'cut.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    const uploads = app.started.app.get(UploadsService);
    let chunks = 0;
    const broken = new Readable({
      read() {
        if (++chunks > 30) return this.destroy(new Error('client went away'));
        this.push(data);
      },
    });
    await expect(uploads.addPart(projectId, up.body.id, broken)).rejects.toThrow(/client went away/);
    expect(await prisma.uploadPart.count({ where: { uploadId: up.body.id } })).toBe(0);
    expect(await keys(`projects/${projectId}/uploads/${up.body.id}/`)).toEqual([]);
  });
});
