import Docker from 'dockerode';
import Redis from 'ioredis';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { PrismaService } from '../../src/db/prisma.service';
import { requireEnv, startTestApp, TestApp, waitFor } from '../support/app';

/**
 * Every way a run can end badly, each against the real engine with a trainer that misbehaves on purpose
 * (test/fixtures/fake-trainers.ts), and each ending with an error code and message a user can act on. Then the
 * faults of loraplane's own dependencies: nobody watching when a container ends, Redis losing its data, the Docker
 * engine going away mid-run (simulated by a unix-socket proxy in front of the shared engine that the test cuts and
 * restores: the shared dockerd itself is never restarted), and cancel.
 */
describe('job durability (e2e)', () => {
  const catalog = writeFakeCatalog();
  const docker = new Docker({ socketPath: requireEnv('DOCKER_SOCKET') });
  const apps: TestApp[] = [];
  let fileId: string;
  const prefix = `d${Date.now().toString(36)}`;
  /** Every app of this suite shares one queue prefix, as the processes of one deployment do. */
  const boot = async (extra: Record<string, string> = {}) => {
    const app = await startTestApp({
      MODEL_CATALOG_FILE: catalog,
      QUEUE_PREFIX: prefix,
      TRAINING_STOP_GRACE_SECONDS: '1',
      TASK_RETRY_DELAY_MS: '300',
      WORKER_LOCK_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      ...extra,
    });
    apps.push(app);
    return { app, client: new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 }) };
  };
  const close = async (app: TestApp) => {
    apps.splice(apps.indexOf(app), 1);
    await app.close();
  };
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  beforeAll(async () => {
    const { app, client } = await boot();
    fileId = (await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed: 9 })), 'd.jsonl'), purpose: 'fine-tune' })).id;
    await close(app);
  });

  const settled = (client: OpenAI, id: string, ms = 60_000) =>
    waitFor(`job ${id} to settle`, async () => {
      const j = await client.fineTuning.jobs.retrieve(id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, ms, 200);
  const allEvents = async (client: OpenAI, id: string) => {
    const out = [];
    for await (const e of client.fineTuning.jobs.listEvents(id, { limit: 100 })) out.push(e);
    return out.reverse();
  };
  const containerOf = (jobId: string) =>
    waitFor(`the container of ${jobId}`, async () => (await docker.listContainers({ all: true, filters: { label: [`io.loraplane.job=${jobId}`] } }))[0], 30_000, 100);
  /**
   * Until the job's container runs. A 404 is "not yet": once, in a loaded fresh-clone run, Docker answered 404 to the
   * inspect of a container its list had just shown, 0.1 s after creating it (it then ran for 45 minutes, the test having
   * failed). A timeout says the job's status and events.
   */
  const untilRunning = (client: OpenAI, jobId: string, containerId: string) =>
    waitFor('it to run', async () => (await docker.getContainer(containerId).inspect().catch(() => null))?.State.Running ?? false, 10_000, 100).catch(async (err: Error) => {
      const events = (await allEvents(client, jobId)).map((e) => `${e.level}: ${e.message}`);
      throw new Error(`${err.message}; job ${jobId} is ${(await client.fineTuning.jobs.retrieve(jobId)).status}, events:\n${events.join('\n')}`);
    });

  it('fails OOM, crashes, broken contract output and a wall-clock timeout with a code and a readable message', async () => {
    const { client } = await boot({ TRAINING_TIMEOUT_SECONDS: '6' });
    const create = (model: string) => client.fineTuning.jobs.create({ model, training_file: fileId });
    const [oom, crash, malformed, hang] = await Promise.all(['fake-oom', 'fake-crash', 'fake-malformed', 'fake-hang'].map(create));
    const t0 = Date.now();
    const ends = await Promise.all([oom, crash, malformed, hang].map((j) => settled(client, j.id)));
    expect(ends.map((j) => j.status)).toEqual(['failed', 'failed', 'failed', 'failed']);
    const [e1, e2, e3, e4] = ends.map((j) => j.error as unknown as { code: string; message: string });
    expect(e1).toMatchObject({ code: 'out_of_memory', message: expect.stringMatching(/ran out of memory \(exit code 137, OOMKilled\)/) });
    expect(e2.code).toBe('trainer_exit');
    expect(e2.message).toBe('the trainer exited with code 7: Traceback: CUDA error: an illegal memory access was encountered');
    expect(e3.code).toBe('contract_error');
    expect(e3.message).toMatch(/^the trainer exited 0 without announcing an adapter artifact; contract violations: line 1: .*step.*; line 2: /);
    expect(e4.code).toBe('timeout');
    expect(e4.message).toMatch(/ran longer than the wall-clock limit of 6 s and was stopped \(exit code 137\)/);
    // The hang ignored SIGTERM: it was killed one grace second after the limit, not left running.
    expect(Date.now() - t0).toBeLessThan(20_000);
    for (const j of [oom, crash, malformed, hang]) {
      // A user error or a trainer failure is never retried: one container start each.
      const events = await allEvents(client, j.id);
      expect(events.filter((e) => e.message.startsWith('Starting training container'))).toHaveLength(1);
      expect(events.filter((e) => e.message.includes('will retry'))).toHaveLength(0);
      expect(await docker.listContainers({ all: true, filters: { label: [`io.loraplane.job=${j.id}`] } })).toHaveLength(0);
    }
  }, 60_000);

  it('cancel stops the container within the grace period', async () => {
    const { client } = await boot();
    const job = await client.fineTuning.jobs.create({ model: 'fake-hang', training_file: fileId });
    const c = await containerOf(job.id);
    await untilRunning(client, job.id, c.Id);
    const t0 = Date.now();
    // The API records the cancel; the worker stops the container (SIGTERM ignored, SIGKILL after the 1 s grace).
    expect((await client.fineTuning.jobs.cancel(job.id)).status).toBe('cancelled');
    await waitFor('the container to stop', async () => !((await docker.getContainer(c.Id).inspect().catch(() => null))?.State.Running ?? false), 5_000, 100);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await new Promise((r) => setTimeout(r, 1000)); // the run sees the container end and must leave it cancelled
    const after = await client.fineTuning.jobs.retrieve(job.id);
    expect({ status: after.status, error: after.error }).toEqual({ status: 'cancelled', error: null });
  }, 30_000);

  it('settles a container that ended while no worker watched, from its exit code and logs', async () => {
    const first = await boot();
    const job = await first.client.fineTuning.jobs.create({ model: 'fake-slow', training_file: fileId, seed: 2500 });
    const c = await containerOf(job.id);
    await close(first.app); // hands the run back; the container keeps going
    const exit = await docker.getContainer(c.Id).wait();
    expect(exit.StatusCode).toBe(0);
    const second = await boot();
    const done = await settled(second.client, job.id);
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    const events = await allEvents(second.client, job.id);
    expect(events.filter((e) => e.type === 'metrics').map((e) => (e.data as { step: number }).step)).toEqual([1, 1, 2, 3]);
    expect((await second.client.fineTuning.jobs.checkpoints.list(job.id)).data.map((x) => x.step_number)).toEqual([3, 2, 1]);
  }, 60_000);

  it('loses no job when Redis loses its data: queue state is rebuilt from Postgres', async () => {
    const redis = new Redis(requireEnv('REDIS_URL'));
    try {
      const first = await boot();
      const running = await first.client.fineTuning.jobs.create({ model: 'fake-slow', training_file: fileId, seed: 3000 });
      await containerOf(running.id);
      await close(first.app);
      // A job created while no worker runs: its only trace in Redis is its queued task.
      const apiOnly = await boot({ LORAPLANE_ROLE: 'api' });
      const waiting = await apiOnly.client.fineTuning.jobs.create({ model: 'fake-ok', training_file: fileId });
      expect(await redis.keys(`${prefix}:*`)).not.toHaveLength(0);
      await redis.flushdb(); // this slot's own Redis database, as a Redis restart without persistence leaves it
      await close(apiOnly.app);
      const second = await boot();
      const [a, b] = await Promise.all([settled(second.client, running.id), settled(second.client, waiting.id)]);
      expect([a.status, b.status]).toEqual(['succeeded', 'succeeded']);
      const events = await allEvents(second.client, running.id);
      expect(events.filter((e) => e.message === 'The job has successfully completed')).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  }, 90_000);

  it('survives the Docker engine going away mid-run and coming back: re-attached, no event twice', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-engine-'));
    const proxySocket = path.join(dir, 'docker.sock');
    const proxy = new EngineProxy(proxySocket, requireEnv('DOCKER_SOCKET'));
    await proxy.up();
    try {
      const { client } = await boot({ DOCKER_SOCKET: proxySocket });
      const job = await client.fineTuning.jobs.create({ model: 'fake-slow', training_file: fileId, seed: 4000 });
      await waitFor('the first metrics event', async () => (await allEvents(client, job.id)).some((e) => e.type === 'metrics'), 30_000, 100);
      await proxy.down(); // every connection to the engine is cut, and new ones are refused
      await waitFor('the run to notice and schedule a retry', async () => (await allEvents(client, job.id)).some((e) => e.message.includes('will retry')), 20_000, 100);
      await new Promise((r) => setTimeout(r, 500));
      await proxy.up();
      const done = await settled(client, job.id);
      expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
      const events = await allEvents(client, job.id);
      expect(events.filter((e) => e.type === 'metrics').map((e) => (e.data as { step: number }).step)).toEqual([1, 1, 2, 3]);
      expect(events.filter((e) => e.message.startsWith('Starting training container'))).toHaveLength(1);
      // The user reads a sentence with an error id; the engine's own message is in the worker's log only.
      expect(events.find((e) => e.message.includes('will retry'))!.message).toMatch(/^loraplane hit an infrastructure problem \(a service it depends on was unavailable; error id err_\w+\) and will retry/);
    } finally {
      await proxy.down();
    }
  }, 90_000);

  it('keeps the GPUs of a cancelled job while its stop fails, retries, and frees them once the stop is confirmed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-engine-'));
    const proxySocket = path.join(dir, 'docker.sock');
    const proxy = new EngineProxy(proxySocket, requireEnv('DOCKER_SOCKET'));
    await proxy.up();
    const { app, client } = await boot({ DOCKER_SOCKET: proxySocket });
    const prisma = app.started.app.get(PrismaService);
    const hostId = `gpuhost-${prefix}`;
    try {
      const job = await client.fineTuning.jobs.create({ model: 'fake-hang', training_file: fileId });
      const c = await containerOf(job.id);
      await untilRunning(client, job.id, c.Id);
      // A GPU held by the job (a disabled host, so no other placement sees it).
      await prisma.gpuHost.create({ data: { id: hostId, name: `held-${prefix}`, engineUrl: 'unix:///nonexistent.sock', gpus: [{ index: 0, model: 'x', memory_gb: 80 }], enabled: false } });
      await prisma.gpuAllocation.create({ data: { id: `gpualloc-${prefix}`, hostId, gpuIndex: 0, jobId: job.id, attempt: 1 } });
      await proxy.down();
      expect((await client.fineTuning.jobs.cancel(job.id)).status).toBe('cancelled'); // the API needs no engine
      await waitFor('a failed stop to be retried', async () => (await allEvents(client, job.id)).some((e) => e.message.includes('will retry')), 20_000, 100);
      await new Promise((r) => setTimeout(r, 1000)); // more failed tries; the GPU must stay held through them
      expect(await prisma.gpuAllocation.count({ where: { jobId: job.id } })).toBe(1);
      expect((await docker.getContainer(c.Id).inspect()).State.Running).toBe(true);
      await proxy.up();
      await waitFor('the GPU to be freed', async () => (await prisma.gpuAllocation.count({ where: { jobId: job.id } })) === 0, 30_000, 100);
      expect((await docker.getContainer(c.Id).inspect().catch(() => null))?.State.Running ?? false).toBe(false);
      const events = await allEvents(client, job.id);
      expect(events.map((e) => e.message)).toContain('The training workload has stopped; its 1 GPU(s) are free');
      expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('cancelled');
    } finally {
      await proxy.down();
      await prisma.gpuAllocation.deleteMany({ where: { hostId } });
      await prisma.gpuHost.deleteMany({ where: { id: hostId } });
    }
  }, 90_000);

  it('retries an unreachable engine per policy, then fails with a message naming it', async () => {
    const { client } = await boot({ DOCKER_SOCKET: '/nonexistent/docker.sock' });
    const job = await client.fineTuning.jobs.create({ model: 'fake-ok', training_file: fileId });
    const done = await settled(client, job.id, 30_000);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'internal_error' });
    // A readable sentence and an error id: the engine's message (a socket path here) stays in the log.
    expect((done.error as unknown as { message: string }).message).toMatch(/^loraplane could not run the job \(a service it depends on was unavailable; error id err_\w+\)$/);
    expect((done.error as unknown as { message: string }).message).not.toMatch(/nonexistent|ENOENT/);
    const retries = (await allEvents(client, job.id)).filter((e) => e.message.includes('will retry'));
    expect(retries.map((e) => e.message.match(/\((\d) of 5 attempts used\)/)?.[1])).toEqual(['1', '2', '3', '4']);
  }, 60_000);
});

/** A unix socket in front of the Docker engine that a test can cut (all connections dropped) and restore. */
class EngineProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  constructor(private readonly path: string, private readonly target: string) {}

  async up(): Promise<void> {
    fs.rmSync(this.path, { force: true });
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.path, resolve));
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
    fs.rmSync(this.path, { force: true });
  }
}
