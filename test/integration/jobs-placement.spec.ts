import Docker from 'dockerode';
import OpenAI, { toFile } from 'openai';
import { newId } from '../../src/common/ids';
import { PrismaService } from '../../src/db/prisma.service';
import { ModelCatalog } from '../../src/training/model-catalog';
import { PlacementService } from '../../src/training/placement/placement.service';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { requireEnv, startTestApp, TestApp, waitFor } from '../support/app';

/**
 * GPU placement against real Postgres and the real Docker engine. The hosts are the local engine with a declared
 * inventory (this machine has no GPU): placement, allocations and the container's DeviceRequests are real; a
 * container asking for an nvidia device cannot start here, so the tests look at what was created, not at a run.
 */
describe('GPU hosts and placement (integration)', () => {
  const catalog = writeFakeCatalog([
    { id: 'gpu-one', count: 1, minMemoryGb: 40 },
    { id: 'gpu-big', count: 4, minMemoryGb: 40 },
  ]);
  const env = { MODEL_CATALOG_FILE: catalog, PLACEMENT_RETRY_MS: '600000' };
  const docker = new Docker({ socketPath: requireEnv('DOCKER_SOCKET') });
  let worker: TestApp; // api + worker
  let second: TestApp; // a second process's placement, to race against
  let prisma: PrismaService;
  let client: OpenAI;
  let fileId: string;

  beforeAll(async () => {
    worker = await startTestApp(env);
    second = await startTestApp({ ...env, LORAPLANE_ROLE: 'api' });
    prisma = worker.started.app.get(PrismaService);
    client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: worker.apiKey, maxRetries: 0 });
    fileId = (await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed: 5 })), 'p.jsonl'), purpose: 'fine-tune' })).id;
  });
  beforeEach(async () => {
    // Hosts are global: every case starts from none, and no queued job of an earlier case competes.
    await prisma.fineTuningJob.updateMany({ where: { status: { in: ['queued', 'running', 'validating_files'] } }, data: { status: 'cancelled' } });
    await prisma.gpuAllocation.deleteMany({});
    await prisma.gpuHost.deleteMany({});
  });
  afterAll(async () => {
    try {
      // Jobs left open would be picked up by the next suite's start-up sweep, whose catalog has no gpu-one.
      await prisma?.fineTuningJob.updateMany({ where: { model: { in: ['gpu-one', 'gpu-big'] }, status: { in: ['queued', 'running', 'validating_files'] } }, data: { status: 'cancelled' } });
      for (const c of await docker.listContainers({ all: true, filters: { label: ['io.loraplane.model=gpu-one'] } })) {
        // The worker may be removing it already (409) or have removed it (404): either way it is going.
        await docker.getContainer(c.Id).remove({ force: true }).catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
        });
      }
    } finally {
      // Always: an app left running here outlives the suite, and its pools then fail the next suites of this worker.
      await second?.close();
      await worker?.close();
    }
  });

  async function admin(method: string, path: string, body?: unknown) {
    const res = await fetch(`${worker.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${worker.apiKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }
  const gpus = (n: number, memory = 80) => Array.from({ length: n }, (_, index) => ({ index, model: 'H100', memory_gb: memory }));
  async function host(name: string, n: number, extra: Record<string, unknown> = {}) {
    const res = await admin('POST', '/v1/admin/gpu_hosts', { name, engine_url: `unix://${requireEnv('DOCKER_SOCKET')}`, gpus: gpus(n), usd_per_gpu_hour: 2, ...extra });
    expect(res.status).toBe(201);
    return res.body;
  }
  /** Queued jobs straight in Postgres (no queue task), created 1 ms apart so FIFO order is known. */
  async function queuedJobs(model: string, n: number, priority = 0, projectId?: string): Promise<string[]> {
    const project = projectId ? { id: projectId } : await prisma.project.findFirstOrThrow({ where: { datasets: { some: { id: fileId } } } });
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = newId.job();
      await prisma.fineTuningJob.create({
        data: {
          id, projectId: project.id, model, status: 'queued', trainingFileId: fileId, seed: 1, priority,
          // A resolved record as the API stores one: every read parses it (a job list in this project too).
          hyperparameters: { method: 'supervised', batch_size: 1, learning_rate_multiplier: 1, n_epochs: 1, learning_rate: 2e-4, lora: { r: 8, alpha: 16, dropout: 0, target_modules: ['q_proj'] } }, method: { type: 'supervised' }, outputPrefix: `projects/${project.id}/jobs/${id}/`,
          createdAt: new Date(Date.now() + i),
        },
      });
      ids.push(id);
    }
    return ids;
  }

  it('registers hosts through the admin API and refuses bad ones with the field named', async () => {
    const h = await host('node-a', 2);
    expect(h).toMatchObject({ object: 'gpu_host', name: 'node-a', usd_per_gpu_hour: 2, enabled: true, gpus: [{ index: 0, job_id: null }, { index: 1, job_id: null }] });
    const dup = await admin('POST', '/v1/admin/gpu_hosts', { name: 'node-a', engine_url: 'unix:///x.sock', gpus: gpus(1) });
    expect({ status: dup.status, param: dup.body.error.param }).toEqual({ status: 400, param: 'name' });
    const badUrl = await admin('POST', '/v1/admin/gpu_hosts', { name: 'x', engine_url: 'http://h', gpus: gpus(1) });
    expect({ status: badUrl.status, param: badUrl.body.error.param }).toEqual({ status: 400, param: 'engine_url' });
    const twice = await admin('POST', '/v1/admin/gpu_hosts', { name: 'y', engine_url: 'tcp://gpu1:2376', gpus: [gpus(1)[0], gpus(1)[0]] });
    expect({ status: twice.status, param: twice.body.error.param }).toEqual({ status: 400, param: 'gpus' });
    const tls = await admin('POST', '/v1/admin/gpu_hosts', { name: 'z', engine_url: 'tcp://gpu1:2376', tls: { ca: '/etc/lp/ca.pem', cert: '/etc/lp/cert.pem', key: '/etc/lp/key.pem' }, gpus: gpus(8) });
    expect(tls.status).toBe(201);
    expect((await admin('GET', '/v1/admin/gpu_hosts')).body.data.map((x: { name: string }) => x.name)).toEqual(['node-a', 'z']);
    expect((await admin('PATCH', `/v1/admin/gpu_hosts/${tls.body.id}`, { enabled: false })).body.enabled).toBe(false);
    expect((await admin('DELETE', `/v1/admin/gpu_hosts/${tls.body.id}`)).body).toEqual({ id: tls.body.id, object: 'gpu_host', deleted: true });
    expect((await admin('GET', `/v1/admin/gpu_hosts/${tls.body.id}`)).status).toBe(404);
  });

  it('never gives one GPU to two jobs when placements race from two processes, and keeps FIFO', async () => {
    await host('race', 2);
    const ids = await queuedJobs('gpu-one', 8);
    const model = worker.started.app.get(ModelCatalog).get('gpu-one');
    const placers = [worker.started.app.get(PlacementService), second.started.app.get(PlacementService)];
    // Newest first, so FIFO has to be enforced rather than happen by call order.
    const results = await Promise.all([...ids].reverse().map((id, i) => placers[i % 2].place({ id }, 1, model)));
    const placed = results.flatMap((r) => ('placed' in r ? [r] : []));
    expect(placed.map((r) => r.placed.id).sort()).toEqual(ids.slice(0, 2).sort());
    expect(placed.map((r) => (r.placement.runtime === 'docker' ? r.placement.gpu_indices[0] : -1)).sort()).toEqual([0, 1]);
    const allocations = await prisma.gpuAllocation.findMany({});
    expect(allocations.map((a) => a.gpuIndex).sort()).toEqual([0, 1]);
    const waiting = results.flatMap((r) => ('waiting' in r ? [r.waiting] : []));
    expect(waiting).toHaveLength(6);
    expect(waiting.every((w) => /gpu-one needs 1 GPU/.test(w))).toBe(true);
  });

  it('places by priority before age, and a job no host can hold does not block others', async () => {
    await host('prio', 1);
    const [old] = await queuedJobs('gpu-one', 1, 0);
    const [never] = await queuedJobs('gpu-big', 1, 50); // needs 4 GPUs: no host has them
    const [urgent] = await queuedJobs('gpu-one', 1, 10);
    const catalog = worker.started.app.get(ModelCatalog);
    const placement = worker.started.app.get(PlacementService);
    const first = await placement.place({ id: old }, 1, catalog.get('gpu-one'));
    expect(first).toEqual({ waiting: expect.stringMatching(/all are in use|queued behind/) });
    const big = await placement.place({ id: never }, 1, catalog.get('gpu-big'));
    expect(big).toEqual({ waiting: expect.stringContaining('no registered host has that many such GPUs (prio: 1/1 suitable free)') });
    const top = await placement.place({ id: urgent }, 1, catalog.get('gpu-one'));
    expect('placed' in top && top.placement).toMatchObject({ host_name: 'prio', gpu_indices: [0], usd_per_gpu_hour: 2 });
  });

  it('at equal priority, a project running no job goes before an older job of a project already running one', async () => {
    await host('fair', 1);
    const busy = (await prisma.project.findFirstOrThrow({ where: { datasets: { some: { id: fileId } } } })).id;
    const idle = (await admin('POST', '/v1/admin/projects', { name: `fair placement ${Date.now()}` })).body.id as string;
    // The busy project already runs a job (elsewhere: it holds none of this host's GPUs).
    const [running] = await queuedJobs('gpu-one', 1, 0, busy);
    await prisma.fineTuningJob.update({ where: { id: running }, data: { status: 'running', attempt: 1 } });
    const [older] = await queuedJobs('gpu-one', 1, 0, busy);
    const [newer] = await queuedJobs('gpu-one', 1, 0, idle);
    const placement = worker.started.app.get(PlacementService);
    const gpuOne = worker.started.app.get(ModelCatalog).get('gpu-one');
    // First come, first served would give the one GPU to the older job; fair order keeps it for the idle project.
    expect(await placement.place({ id: older }, 1, gpuOne)).toEqual({ waiting: expect.stringMatching(/all are in use/) });
    const placed = await placement.place({ id: newer }, 1, gpuOne);
    expect('placed' in placed && placed.placement).toMatchObject({ host_name: 'fair', gpu_indices: [0] });
  });

  it('pins exact device ids in the container, says what a queued job waits for, and frees GPUs on cancel', async () => {
    const h = await host('local-gpus', 2, { gpus: [{ index: 0, model: 'A10', memory_gb: 24 }, { index: 3, model: 'H100', memory_gb: 80 }] });
    // fake-slow runs for `seed % 100000` ms: a random seed could end the container before it is inspected.
    const a = await client.fineTuning.jobs.create({ model: 'gpu-one', training_file: fileId, seed: 60_000 });
    const b = await client.fineTuning.jobs.create({ model: 'gpu-one', training_file: fileId, seed: 60_000 });
    // Listed and inspected in one step: a container listed while the engine is still creating (or rolling back a
    // failed create of) it can be gone by the time it is inspected; the next look finds the one that stays.
    const info = await waitFor('the container of the placed job', async () => {
      const [c] = await docker.listContainers({ all: true, filters: { label: [`io.loraplane.job=${a.id}`] } });
      return c && docker.getContainer(c.Id).inspect().catch((err) => (err.statusCode === 404 ? null : Promise.reject(err)));
    }, 30_000);
    // GPU 0 has 24 GB, below the model's 40 GB minimum: the job gets exactly GPU 3.
    expect(info.HostConfig.DeviceRequests).toEqual([expect.objectContaining({ Driver: 'nvidia', DeviceIDs: ['3'], Capabilities: [['gpu']] })]);
    expect(info.HostConfig).toMatchObject({ CapDrop: ['ALL'], ReadonlyRootfs: true, SecurityOpt: ['no-new-privileges'], Init: true });
    expect(info.Config.User).toBe('65534:65534');
    expect((await admin('GET', `/v1/admin/gpu_hosts/${h.id}`)).body.gpus).toEqual([
      { index: 0, model: 'A10', memory_gb: 24, job_id: null },
      { index: 3, model: 'H100', memory_gb: 80, job_id: a.id },
    ]);
    const placedA = (await admin('GET', `/v1/fine_tuning/jobs/${a.id}`)).body;
    expect(placedA.placement).toEqual({ runtime: 'docker', host_id: h.id, host_name: 'local-gpus', gpu_indices: [3], usd_per_gpu_hour: 2 });

    const waitEvent = await waitFor('b to say what it waits for', async () => {
      const events = await client.fineTuning.jobs.listEvents(b.id);
      return events.data.find((e) => e.message.startsWith('Waiting for GPUs'));
    }, 30_000);
    expect(waitEvent.message).toBe('Waiting for GPUs: gpu-one needs 1 GPU(s) with at least 40 GB each: all are in use (local-gpus: 0/1 suitable free)');
    expect((await client.fineTuning.jobs.retrieve(b.id)).status).toBe('queued');

    // Cancelling a frees GPU 3 once the worker has stopped its container, and wakes b at once (its own retry is 10
    // minutes away).
    expect((await client.fineTuning.jobs.cancel(a.id)).status).toBe('cancelled');
    await waitFor('a\'s GPU to be freed', async () => (await prisma.gpuAllocation.count({ where: { jobId: a.id } })) === 0, 30_000);
    const placedB = await waitFor('b to be placed', async () => {
      const j = (await admin('GET', `/v1/fine_tuning/jobs/${b.id}`)).body;
      return j.placement ? j : null;
    }, 30_000);
    expect(placedB.placement.gpu_indices).toEqual([3]);
    expect(placedB.status).not.toBe('queued');
    await client.fineTuning.jobs.cancel(b.id).catch(() => undefined);
  });
});
