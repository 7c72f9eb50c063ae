import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { DomainError } from '../../src/common/domain-error';
import { DatasetsService } from '../../src/datasets/datasets.service';
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
