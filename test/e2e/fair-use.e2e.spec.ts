import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { startTestApp, TestApp } from '../support/app';

/** Fair use: priority range by key kind, and one error code per quota (README "Fair use"). */
describe('fair use: priorities and per-project quotas (e2e)', () => {
  let app: TestApp;
  const api = apiClient(() => ({ url: app.url, key: app.apiKey }));
  const call = (key: string, method: string, path: string, body?: unknown) => api(method, path, body, key);
  const newProject = async (name: string): Promise<string> => (await call(app.apiKey, 'POST', '/admin/projects', { name })).body.api_key.value;
  const file = (seed: number) => {
    const f = new FormData();
    f.append('purpose', 'fine-tune');
    f.append('file', new Blob([makeTicketDataset({ n: 12, seed })]), `fair-${seed}.jsonl`);
    return f;
  };

  beforeAll(async () => {
    app = await startTestApp({
      LORAPLANE_ROLE: 'api',
      MODEL_CATALOG_FILE: writeFakeCatalog([{ id: 'gpu-one', count: 1, minMemoryGb: 40 }]),
      PROJECT_PRIORITY_MAX: '10',
      QUOTA_GPU_JOBS: '1',
      QUOTA_POOLS: '1',
      QUOTA_REPLICAS: '1',
      QUOTA_EVAL_TARGETS: '1',
      QUOTA_STORED_BYTES: String(Buffer.byteLength(makeTicketDataset({ n: 12, seed: 1 })) + 100),
    });
  });
  afterAll(() => app?.close());

  it('a project key sets priority only within -10..10; an admin key the full range; one GPU job at a time', async () => {
    const key = await newProject('fair a');
    const fileId = (await call(key, 'POST', '/files', file(1))).body.id;
    const high = await call(key, 'POST', '/fine_tuning/jobs', { model: 'gpu-one', training_file: fileId, priority: 11 });
    expect([high.status, high.body.error.param]).toEqual([400, 'priority']);
    expect((await call(key, 'POST', '/fine_tuning/jobs', { model: 'gpu-one', training_file: fileId, priority: -11 })).status).toBe(400);
    const ok = await call(key, 'POST', '/fine_tuning/jobs', { model: 'gpu-one', training_file: fileId, priority: 10 });
    expect([ok.status < 300, ok.body.priority]).toEqual([true, 10]);
    const second = await call(key, 'POST', '/fine_tuning/jobs', { model: 'gpu-one', training_file: fileId });
    expect([second.status, second.body.error.code, second.body.error.type]).toEqual([403, 'quota_gpu_jobs', 'insufficient_quota']);
    // CPU jobs (tiny-lora) hold no GPU and are not counted.
    expect((await call(key, 'POST', '/fine_tuning/jobs', { model: 'tiny-lora', training_file: fileId })).status).toBeLessThan(300);
    // Cancelled, it no longer counts.
    expect((await call(key, 'POST', `/fine_tuning/jobs/${ok.body.id}/cancel`)).status).toBeLessThan(300);
    expect((await call(key, 'POST', '/fine_tuning/jobs', { model: 'gpu-one', training_file: fileId })).status).toBeLessThan(300);

    // The admin key's priority 100 passes the priority check: what it is refused for is the missing file.
    const admin = await call(app.apiKey, 'POST', '/fine_tuning/jobs', { model: 'tiny-lora', training_file: 'file-none', priority: 100 });
    expect([admin.status, admin.body.error.param]).toEqual([400, 'training_file']);
  });

  it('pools, replicas and eval targets each stop at their quota with their own code', async () => {
    const key = await newProject('fair b');
    expect((await call(key, 'POST', '/serving/pools', { name: 'p1', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2 })).status).toBe(201);
    const pool2 = await call(key, 'POST', '/serving/pools', { name: 'p2', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2 });
    expect([pool2.status, pool2.body.error.code]).toEqual([403, 'quota_pools']);
    const replica = (name: string) => call(key, 'POST', '/serving/pools/p1/replicas', { name, vllm_url: 'http://127.0.0.1:1', agent_url: 'http://127.0.0.1:2', agent_token: 'x'.repeat(32) });
    expect((await replica('r1')).status).toBe(201);
    const r2 = await replica('r2');
    expect([r2.status, r2.body.error.code]).toEqual([403, 'quota_replicas']);
    const target = (name: string) => call(key, 'POST', '/evals/targets', { name, kind: 'api', base_url: 'http://127.0.0.1:9/v1', model: 'o3-mini' });
    expect((await target('t1')).status).toBe(201);
    const t2 = await target('t2');
    expect([t2.status, t2.body.error.code, t2.body.error.message]).toEqual([403, 'quota_eval_targets', expect.stringMatching(/at most 1 eval targets/)]);
    // Another project has its own quotas.
    const other = await newProject('fair c');
    expect((await call(other, 'POST', '/serving/pools', { name: 'p1', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2 })).status).toBe(201);
  });

  it('stored bytes: a file or an upload past the quota is refused and nothing is kept; the same bytes again take no room', async () => {
    const key = await newProject('fair d');
    const first = await call(key, 'POST', '/files', file(1));
    expect(first.status).toBeLessThan(300);
    const again = await call(key, 'POST', '/files', file(1));
    expect([again.status < 300, again.body.id]).toEqual([true, first.body.id]);
    const more = await call(key, 'POST', '/files', file(3));
    expect([more.status, more.body.error.code]).toEqual([403, 'quota_stored_bytes']);
    expect((await call(key, 'GET', '/files')).body.data).toHaveLength(1);
    const up = await call(key, 'POST', '/uploads', { bytes: 1000, filename: 'u.jsonl', mime_type: 'text/jsonl', purpose: 'fine-tune' });
    expect([up.status, up.body.error.code, up.body.error.param]).toEqual([403, 'quota_stored_bytes', 'bytes']);
    // Deleting makes room.
    expect((await call(key, 'DELETE', `/files/${first.body.id}`)).status).toBeLessThan(300);
    expect((await call(key, 'POST', '/files', file(3))).status).toBeLessThan(300);
  });
});
