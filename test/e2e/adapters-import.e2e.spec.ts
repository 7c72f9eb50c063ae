import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { parseAdapter } from '../../jobs/tiny-lora/model';
import { serialize } from '../../jobs/tiny-lora/safetensors';
import { adapterFiles, examplesFromJsonl, train } from '../../jobs/tiny-lora/trainer';
import { newId } from '../../src/common/ids';
import { PrismaService } from '../../src/db/prisma.service';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { newProject, requireEnv, startTestApp, TestApp, testS3 } from '../support/app';

interface VersionView {
  id: string;
  version: number;
  base_model: string;
  rank: number;
  target_modules: string[];
  files: { name: string; bytes: number; sha256: string }[];
  lineage: { source: string; job_id: string | null; checkpoint_id: string | null; dataset_id: string | null; imported_from: string | null };
  download?: { name: string; url: string }[];
}
interface ApiError {
  error: { message: string; code: string; param: string | null; pools?: string[] };
}
type Entry = { name: string; data?: Buffer; type?: 'file' | 'directory' | 'symlink'; linkname?: string };

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A PEFT directory as a tarball, built entry by entry so a test can put anything in it. */
async function tarball(entries: Entry[], gzip = false): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname }, e.data ?? Buffer.alloc(0));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  return gzip ? gzipSync(bytes) : bytes;
}

/**
 * Adapters trained elsewhere become versions: a PEFT directory uploaded as a tarball (streamed into S3 while hashed
 * and checked) or copied from an S3 prefix the project may read. Whatever is refused leaves no object and no row.
 */
describe('adapter import (e2e)', () => {
  let app: TestApp;
  let keyA: string;
  let keyB: string;
  let projectA: string;
  let prisma: PrismaService;
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  let config: Buffer;
  let weights: Buffer;
  /** Another adapter's files: the same shape, other bytes. */
  let config2: Buffer;
  let weights2: Buffer;

  const api = apiClient(() => ({ url: app.url, key: keyA }));
  const upload = async (adapter: string, file: Buffer, filename: string, key = keyA, description?: string) => {
    const form = new FormData();
    form.append('file', new Blob([file]), filename);
    if (description !== undefined) form.append('description', description);
    return api('POST', `/adapters/${adapter}/versions/import`, form, key);
  };
  const fromS3 = (adapter: string, s3Prefix: string, key = keyA) => api('POST', `/adapters/${adapter}/versions/import`, { s3_prefix: s3Prefix }, key);
  const objectsUnder = async (prefix: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
  const adapterObjects = () => objectsUnder(`projects/${projectA}/adapters/`);
  const expectRefused = (res: { status: number; body: unknown }, code: string, param: string, message: RegExp) => {
    expect(res.status).toBe(400);
    expect((res.body as ApiError).error).toMatchObject({ code, param, message: expect.stringMatching(message) });
  };
  const goodEntries = (dir = ''): Entry[] => [
    { name: `${dir}adapter_config.json`, data: config },
    { name: `${dir}adapter_model.safetensors`, data: weights },
    { name: `${dir}README.md`, data: Buffer.from('# tickets adapter\n') },
  ];

  beforeAll(async () => {
    app = await startTestApp();
    prisma = app.started.app.get(PrismaService);
    ({ id: projectA, key: keyA } = await newProject(app, 'import tenant A'));
    ({ key: keyB } = await newProject(app, 'import tenant B'));

    // A real tiny-lora adapter, trained here the way a trainer outside loraplane would have made it.
    const { trainJsonl } = makeTicketSplit({ nTrain: 60, nHeldOut: 0, seed: 9 });
    const lora = { r: 8, alpha: 16, dropout: 0 };
    const trained = await train(examplesFromJsonl(trainJsonl), { seed: 3, n_epochs: 2, batch_size: 8, learning_rate: 0.05, lora });
    const files = adapterFiles(trained, lora);
    config = files.find((f) => f.name === 'adapter_config.json')!.data;
    weights = files.find((f) => f.name === 'adapter_model.safetensors')!.data;
    config2 = Buffer.from(JSON.stringify({ ...JSON.parse(config.toString()), r: 4, lora_alpha: 8 }));
    weights2 = serialize({ 'base_model.model.lm_head.lora_A.weight': { shape: [4, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('imports a plain tar as a version with hashed files, no job lineage, and the bytes served back', async () => {
    const res = await upload('imported', await tarball(goodEntries()), 'adapter.tar', keyA, 'trained on the laptop');
    expect(res.status).toBe(201);
    const v = res.body as VersionView;
    expect(v).toMatchObject({ version: 1, base_model: 'tiny-lora', rank: 8, target_modules: ['lm_head'] });
    expect(v.lineage).toEqual({ source: 'import', job_id: null, checkpoint_id: null, dataset_id: null, hyperparameters: null, imported_from: 'adapter.tar' });
    expect(v.files).toEqual([
      { name: 'adapter_config.json', bytes: config.length, sha256: sha256(config) },
      { name: 'adapter_model.safetensors', bytes: weights.length, sha256: sha256(weights) },
    ]);
    // README.md was read past: the version's prefix holds exactly the two adapter files.
    const row = await prisma.adapterVersion.findUniqueOrThrow({ where: { id: v.id } });
    expect(await objectsUnder(row.s3Prefix)).toEqual([`${row.s3Prefix}adapter_config.json`, `${row.s3Prefix}adapter_model.safetensors`]);
    expect((await api('GET', '/adapters')).body).toMatchObject({ data: [expect.objectContaining({ name: 'imported', description: 'trained on the laptop', latest_version: 1 })] });

    const detail = (await api('GET', '/adapters/imported/versions/1')).body as VersionView;
    const got: Record<string, Buffer> = {};
    for (const d of detail.download!) got[d.name] = Buffer.from(await (await fetch(d.url)).arrayBuffer());
    expect(got['adapter_model.safetensors'].equals(weights)).toBe(true);
    expect(parseAdapter(JSON.parse(got['adapter_config.json'].toString()), got['adapter_model.safetensors']).r).toBe(8);
  });

  it('imports a .tar.gz (told by its bytes, not its name) whose files sit in one folder', async () => {
    const entries: Entry[] = [
      { name: 'run-7/', type: 'directory' },
      { name: 'run-7/adapter_model.safetensors', data: weights2 },
      { name: 'run-7/adapter_config.json', data: config2 },
      { name: 'run-7/checkpoint-10/adapter_config.json', data: Buffer.from('{"ignored": true}') },
    ];
    const res = await upload('imported', await tarball(entries, true), 'weights.tar', keyA);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ version: 2, rank: 4, lineage: { imported_from: 'weights.tar' } });
    expect((res.body as VersionView).files.map((f) => f.sha256)).toEqual([sha256(config2), sha256(weights2)]);
  });

  it("takes a trainer's output directory packed from inside: the top level wins over its checkpoint folders", async () => {
    const entries: Entry[] = [
      { name: './', type: 'directory' },
      { name: './checkpoint-500/', type: 'directory' },
      { name: './checkpoint-500/adapter_config.json', data: config2 },
      { name: './checkpoint-500/adapter_model.safetensors', data: weights2 },
      { name: './checkpoint-500/optimizer.pt', data: Buffer.alloc(1000, 7) },
      { name: './adapter_model.safetensors', data: weights },
      { name: './adapter_config.json', data: config },
    ];
    const res = await upload('trainer-dir', await tarball(entries, true), 'output_dir.tgz');
    expect(res.status).toBe(201);
    const v = res.body as VersionView;
    expect(v).toMatchObject({ rank: 8, files: [{ sha256: sha256(config) }, { sha256: sha256(weights) }] });
    // What S3 holds is the top level's bytes, not the checkpoint's written first.
    const row = await prisma.adapterVersion.findUniqueOrThrow({ where: { id: v.id } });
    const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${row.s3Prefix}adapter_model.safetensors` }));
    expect(sha256(Buffer.from(await stored.Body!.transformToByteArray()))).toBe(sha256(weights));
    expect(await objectsUnder(row.s3Prefix)).toHaveLength(2);
  });

  it('returns the existing version with 200 for the same bytes again, and keeps no second copy', async () => {
    const before = await adapterObjects();
    const again = await upload('imported', await tarball(goodEntries('copy/'), true), 'again.tgz');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ version: 1, lineage: { imported_from: 'adapter.tar' } });
    expect(await adapterObjects()).toEqual(before);
    const versions = (await api('GET', '/adapters/imported/versions')).body as { data: VersionView[] };
    expect(versions.data.map((v) => v.version)).toEqual([2, 1]);
  });

  it('refuses what vLLM could not serve or a tarball PEFT would not make, naming the file or entry, leaving nothing', async () => {
    const before = await adapterObjects();
    const dora = Buffer.from(JSON.stringify({ ...JSON.parse(config.toString()), use_dora: true }));
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: dora }, { name: 'adapter_model.safetensors', data: weights }]), 'dora.tar'), 'invalid_adapter', 'adapter_config.use_dora', /use_dora/);
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: config }, { name: 'README.md', data: Buffer.from('hi') }]), 'half.tar'), 'invalid_adapter', 'file', /lacks adapter_model\.safetensors/);
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: Buffer.from('{"peft_type": ') }, { name: 'adapter_model.safetensors', data: weights }]), 'x.tar'), 'invalid_adapter', 'adapter_config.json', /adapter_config\.json: is not valid JSON/);
    const padded = Buffer.from(JSON.stringify({ ...JSON.parse(config.toString()), notes: 'x'.repeat(1024 * 1024) }));
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: padded }, { name: 'adapter_model.safetensors', data: weights }]), 'x.tar'), 'invalid_adapter', 'adapter_config.json', /larger than 1 MB/);
    expectRefused(await upload('refused', await tarball([{ name: 'a/adapter_config.json', data: config }, { name: 'b/adapter_model.safetensors', data: weights }]), 'x.tar'), 'invalid_adapter', 'file', /adapter_config\.json is in 'a\/' but adapter_model\.safetensors in 'b\/'/);
    expectRefused(await upload('refused', await tarball([...goodEntries('a/'), ...goodEntries('b/')]), 'x.tar'), 'invalid_adapter', 'file', /'b\/adapter_config\.json' is a second adapter_config\.json, besides the one in 'a\/'/);
    expectRefused(await upload('refused', await tarball([...goodEntries(), { name: './adapter_config.json', data: config }]), 'x.tar'), 'invalid_adapter', 'file', /'\.\/adapter_config\.json' is a second adapter_config\.json/);
    expectRefused(await upload('refused', await tarball(goodEntries(), true), 'x.tar', keyA, 'd'.repeat(501)), 'invalid_request', 'description', /at most 500/);

    // Path traversal, absolute names and links are refused even where they would have been ignored.
    expectRefused(await upload('refused', await tarball([...goodEntries(), { name: '../adapter_config.json', data: config }]), 'x.tar'), 'invalid_adapter', 'file', /'\.\.\/adapter_config\.json'/);
    expectRefused(await upload('refused', await tarball([{ name: '/etc/adapter_config.json', data: config }]), 'x.tar'), 'invalid_adapter', 'file', /'\/etc\/adapter_config\.json' has an absolute/);
    expectRefused(await upload('refused', await tarball([{ name: 'notes.md', type: 'symlink', linkname: '/etc/passwd' }, ...goodEntries()]), 'x.tar'), 'invalid_adapter', 'file', /'notes\.md' is a link/);

    // Corrupt weights, after the config was already written to S3: it is deleted again.
    const notJson = Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"not": json!!} ')]);
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: notJson }]), 'x.tar'), 'invalid_adapter', 'adapter_model.safetensors', /adapter_model\.safetensors: the safetensors header is not valid JSON/);
    const huge = Buffer.alloc(64);
    huge.writeBigUInt64LE(200n * 1024n * 1024n, 0);
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: huge }]), 'x.tar'), 'invalid_adapter', 'adapter_model.safetensors', /larger than the 100 MB limit/);
    expectRefused(await upload('refused', await tarball([{ name: 'adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: weights.subarray(0, weights.length - 4) }]), 'x.tar'), 'invalid_adapter', 'adapter_model.safetensors', /follow it/);
    expectRefused(await upload('refused', Buffer.from('just some text, not a tarball at all, padded to look long enough'.repeat(20)), 'x.tar'), 'invalid_adapter', 'file', /not a readable tar/);

    expect(await adapterObjects()).toEqual(before);
    expect((await api('GET', '/adapters/refused/versions')).status).toBe(404);
  });

  it('copies from a shared import prefix or the project\'s own, and refuses any other prefix or bucket', async () => {
    const from = `imports/team-x/run-${newId.adapter()}/`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${from}adapter_config.json`, Body: config2 }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${from}adapter_model.safetensors`, Body: weights2 }));
    const res = await fromS3('from-s3', `s3://${bucket}/${from}`);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ version: 1, rank: 4, lineage: { source: 'import', imported_from: `s3://${bucket}/${from}` } });
    expect((res.body as VersionView).files.map((f) => f.sha256)).toEqual([sha256(config2), sha256(weights2)]);
    // The copy is the version's own: the drop zone can be cleaned up without touching it.
    const row = await prisma.adapterVersion.findUniqueOrThrow({ where: { id: (res.body as VersionView).id } });
    expect(row.s3Prefix.startsWith(`projects/${projectA}/adapters/`)).toBe(true);
    expect(await objectsUnder(row.s3Prefix)).toHaveLength(2);

    // The project's own prefix: another version's files are the same bytes, so the same version comes back.
    const own = await fromS3('from-s3', `s3://${bucket}/${row.s3Prefix.slice(0, -1)}`);
    expect(own.status).toBe(200);
    expect((own.body as VersionView).id).toBe(row.id);

    const before = await adapterObjects();
    // Another tenant must never read this project's bytes, however the prefix is spelled.
    expectRefused(await fromS3('stolen', `s3://${bucket}/${row.s3Prefix}`, keyB), 'invalid_request', 's3_prefix', /must lie under this project's projects\//);
    expectRefused(await fromS3('stolen', `s3://${bucket}/imports/../${row.s3Prefix}`, keyB), 'invalid_request', 's3_prefix', /'\.\.'/);
    expectRefused(await fromS3('stolen', `s3://other-bucket/${from}`), 'invalid_request', 's3_prefix', /bucket/);
    expectRefused(await fromS3('stolen', `/${from}`), 'invalid_request', 's3_prefix', /s3:\/\/<bucket>/);
    expectRefused(await fromS3('empty', `s3://${bucket}/imports/nothing-here/`), 'invalid_adapter', 's3_prefix', /has no adapter_config\.json/);
    expect(await adapterObjects()).toEqual(before);
    expect((await api('GET', '/adapters/stolen/versions', undefined, keyB)).status).toBe(404);
  });

  it("keeps imported versions to their project: another project sees none of them", async () => {
    expect((await api('GET', '/adapters', undefined, keyB)).body).toMatchObject({ data: [] });
    expect((await api('GET', '/adapters/imported/versions', undefined, keyB)).status).toBe(404);
    expect((await api('GET', '/adapters/imported/versions/1', undefined, keyB)).status).toBe(404);
    expect((await api('DELETE', '/adapters/imported/versions/1', undefined, keyB)).status).toBe(404);
    // B importing the same bytes under the same name gets its own adapter, numbered from 1.
    const own = await upload('imported', await tarball(goodEntries()), 'adapter.tar', keyB);
    expect(own.status).toBe(201);
    expect(own.body).toMatchObject({ version: 1 });
    const a = (await api('GET', '/adapters/imported/versions/1')).body as VersionView;
    expect((own.body as VersionView).id).not.toBe(a.id);
  });

  it('refuses to delete a version that a pool deploys or an alias names, and deletes it once neither does', async () => {
    const v = (await api('GET', '/adapters/imported/versions/2')).body as VersionView;
    const adapter = await prisma.adapter.findFirstOrThrow({ where: { projectId: projectA, name: 'imported' } });
    const pool = await prisma.servingPool.create({
      data: {
        id: newId.pool(),
        projectId: projectA,
        name: 'tickets-pool',
        baseModel: 'tiny-lora',
        servedModelName: 'tiny-lora',
        maxLoraRank: 16,
        maxLoras: 4,
        maxCpuLoras: 8,
        supportedTargets: ['lm_head'],
        probePrompt: 'my parcel never came',
      },
    });
    const deployment = await prisma.deployment.create({ data: { id: newId.deployment(), poolId: pool.id, projectId: projectA, versionId: v.id } });

    const refused = await api('DELETE', '/adapters/imported/versions/2');
    expectRefused(refused, 'version_in_use', 'version', /imported@v2 is deployed on tickets-pool/);
    expect((refused.body as ApiError).error.pools).toEqual(['tickets-pool']);
    await prisma.deployment.delete({ where: { id: deployment.id } });

    // An alias naming it as its canary holds it as well.
    const stable = (await api('GET', '/adapters/imported/versions/1')).body as VersionView;
    const alias = await prisma.alias.create({
      data: { id: newId.alias(), poolId: pool.id, projectId: projectA, adapterId: adapter.id, versionId: stable.id, canaryVersionId: v.id, canaryReplicas: 1 },
    });
    expectRefused(await api('DELETE', '/adapters/imported/versions/2'), 'version_in_use', 'version', /tickets-pool/);
    await prisma.alias.delete({ where: { id: alias.id } });

    expect((await api('DELETE', '/adapters/imported/versions/2')).body).toMatchObject({ deleted: true });
    expect((await api('GET', '/adapters/imported/versions/2')).status).toBe(404);
    await prisma.servingPool.delete({ where: { id: pool.id } });
  });
});

/** The upload limit holds for the bytes sent and, separately, for what a .tar.gz unpacks to. */
describe('adapter import limits (e2e)', () => {
  let app: TestApp;
  let tenant: { id: string; key: string };
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');

  beforeAll(async () => {
    app = await startTestApp({ MAX_UPLOAD_BYTES: String(64 * 1024) });
    tenant = await newProject(app, 'import limits');
  });
  afterAll(async () => {
    await app?.close();
  });

  const api = apiClient(() => ({ url: app.url, key: tenant.key }));
  const upload = async (file: Buffer) => {
    const form = new FormData();
    form.append('file', new Blob([file]), 'big.tar');
    const res = await api('POST', '/adapters/big/versions/import', form);
    return { status: res.status, body: res.body as ApiError };
  };

  it('answers 413 above MAX_UPLOAD_BYTES, also for a small .tar.gz that unpacks past it, and keeps nothing', async () => {
    const config = Buffer.from(JSON.stringify({ peft_type: 'LORA', base_model_name_or_path: 'tiny-lora', r: 2, target_modules: ['lm_head'] }));
    const weights = serialize({ w: { shape: [64, 1024], data: new Float32Array(64 * 1024).map((_, i) => Math.sin(i)) } }); // 256 KB
    const big = await upload(await tarball([{ name: 'adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: weights }]));
    expect(big).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large', param: 'file', message: expect.stringMatching(/The upload is larger/) } } });
    const bomb = await tarball([{ name: 'README.md', data: Buffer.alloc(4 * 1024 * 1024) }, { name: 'adapter_config.json', data: config }], true);
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(await upload(bomb)).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large', message: expect.stringMatching(/unpacked tarball/) } } });
    const left = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `projects/${tenant.id}/adapters/` }));
    expect(left.Contents ?? []).toEqual([]);
  });
});
