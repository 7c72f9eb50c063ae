import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { PrismaService } from '../../src/db/prisma.service';
import { trainingJobName } from '../../src/training/runtime/kubernetes/kubernetes-manifests';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testEnv, waitFor } from '../support/app';
import { FakeKubeApi } from '../support/fake-kube-api';

const MAIN = path.resolve(__dirname, '../../dist/main.js');

/**
 * Fine-tuning jobs on a registered Kubernetes cluster, end to end: the admin API registers the fake cluster
 * (test/support/fake-kube-api.ts; its pods run as processes here, uploading to the test S3 server through the
 * presigned URLs of the spec), the official SDK creates jobs, and the unchanged JobRunner drives them through
 * KubernetesRuntime: queued with the scheduler's message, success, OOMKilled, eviction retried, cancel, and a
 * worker process killed with -9 while a job trains, then re-attached.
 */
describe('training on Kubernetes (e2e)', () => {
  const catalog = writeFakeCatalog([
    { id: 'k8s-ok', count: 1, minMemoryGb: 40, trainer: 'fake-ok' },
    { id: 'k8s-slow', count: 1, minMemoryGb: 40, trainer: 'fake-slow' },
  ]);
  const fake = new FakeKubeApi({ gpus: 1, images: { [requireEnv('TINY_LORA_IMAGE')]: ['node'] }, processEnv: { PATH: process.env.PATH ?? '/usr/bin' } });
  const kubeconfig = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lp-kube-')), 'config');
  const env = { MODEL_CATALOG_FILE: catalog, PLACEMENT_RETRY_MS: '300', KUBERNETES_POLL_MS: '100', TRAINING_STOP_GRACE_SECONDS: '2', TASK_RETRY_DELAY_MS: '200' };
  let app: TestApp;
  let client: OpenAI;
  let prisma: PrismaService;
  let fileId: string;

  beforeAll(async () => {
    await fake.start();
    fs.writeFileSync(kubeconfig, fake.kubeconfig());
    app = await startTestApp(env);
    prisma = app.started.app.get(PrismaService);
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
    await prisma.kubernetesCluster.deleteMany({});
    fileId = (await client.files.create({ file: await toFile(Buffer.from(makeTicketDataset({ n: 20, seed: 3 })), 'k.jsonl'), purpose: 'fine-tune' })).id;
  });
  afterAll(async () => {
    await app?.close();
    await fake.stop();
  });

  const admin = apiClient(() => ({ url: app.url, key: app.apiKey }), { prefix: '' });
  const settled = (id: string, ms = 60_000) =>
    waitFor(`${id} to settle`, async () => {
      const j = await client.fineTuning.jobs.retrieve(id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, ms, 200);
  const events = async (id: string) => (await client.fineTuning.jobs.listEvents(id, { limit: 100 })).data;
  const runningPod = (jobId: string) => fake.list('pods', 'ml', [['io.loraplane.job', jobId]]).find((p) => p.status.phase === 'Running');

  it('registers the cluster through the admin API, refusing bad input with the field named', async () => {
    const bad = await admin('POST', '/v1/admin/kubernetes_clusters', { name: 'c', namespace: 'ML_ns', models: ['k8s-ok', 'nope'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('namespace');
    const unknown = await admin('POST', '/v1/admin/kubernetes_clusters', { name: 'c', namespace: 'ml', models: ['k8s-ok', 'nope'] });
    expect([unknown.status, unknown.body.error.param]).toEqual([400, 'models[1]']);
    const ok = await admin('POST', '/v1/admin/kubernetes_clusters', {
      name: 'fake', kubeconfig_path: kubeconfig, namespace: 'ml', models: ['k8s-ok', 'k8s-slow'], usd_per_gpu_hour: 3,
      node_selector: { 'nvidia.com/gpu.present': 'true' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ object: 'kubernetes_cluster', name: 'fake', namespace: 'ml', in_cluster: false, models: ['k8s-ok', 'k8s-slow'] });
    expect((await admin('POST', '/v1/admin/kubernetes_clusters', { name: 'fake', namespace: 'ml', models: ['k8s-ok'] })).body.error.param).toBe('name');
  });

  it('success: the Job runs with the spec from its Secret, events and the adapter arrive, nothing of the spec leaks', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'k8s-ok', training_file: fileId });
    const done = await settled(job.id);
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    expect(done.fine_tuned_model).toMatch(/^ft:k8s-ok:/);
    const all = await events(job.id);
    expect(all.filter((e) => e.type === 'metrics')).toHaveLength(3);
    expect(all.map((e) => e.message)).toContain('Checkpoint saved at step 3');
    expect(all.some((e) => e.message.startsWith('Scheduled on Kubernetes cluster fake (namespace ml)'))).toBe(true);
    const row = await prisma.fineTuningJob.findUniqueOrThrow({ where: { id: job.id } });
    expect(row.placement).toMatchObject({ runtime: 'kubernetes', cluster_name: 'fake', namespace: 'ml', gpus: 1, usd_per_gpu_hour: 3 });
    expect(row.workloadId).toBe(trainingJobName(job.id, 1));
    expect(fake.get('jobs', 'ml', row.workloadId!)).toBeUndefined(); // removed once settled
    expect(JSON.stringify(all)).not.toMatch(/X-Amz-Signature|x-amz-signature|Policy/);
  });

  it('a job the cluster cannot schedule yet stays queued with what it waits for, then runs', async () => {
    const first = await client.fineTuning.jobs.create({ model: 'k8s-slow', training_file: fileId, seed: 3000 });
    await waitFor('the first job to run', async () => runningPod(first.id), 30_000);
    const second = await client.fineTuning.jobs.create({ model: 'k8s-ok', training_file: fileId });
    const waitEvent = await waitFor('a wait event', async () => (await events(second.id)).find((e) => e.message.startsWith('Waiting for GPUs')), 30_000);
    expect(waitEvent.message).toBe(
      'Waiting for GPUs: 1 nvidia.com/gpu in namespace ml: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.',
    );
    expect((await client.fineTuning.jobs.retrieve(second.id)).status).toBe('queued');
    expect((await settled(first.id)).status).toBe('succeeded');
    expect((await settled(second.id)).status).toBe('succeeded');
  });

  it('OOMKilled fails the job with out_of_memory', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'k8s-slow', training_file: fileId, seed: 60000 });
    const pod = await waitFor('the pod to run', async () => runningPod(job.id), 30_000);
    await waitFor('a first event from the trainer', async () => (await events(job.id)).some((e) => e.type === 'metrics'), 30_000);
    fake.kubelet.oomKill(pod.metadata.name);
    const done = await settled(job.id);
    expect(done.status).toBe('failed');
    expect(done.error?.code).toBe('out_of_memory');
  });

  it('an evicted pod is retried per the queue policy, and the retry succeeds without duplicated events', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'k8s-slow', training_file: fileId, seed: 1500 });
    const pod = await waitFor('the pod to run', async () => runningPod(job.id), 30_000);
    await waitFor('a first event from the trainer', async () => (await events(job.id)).some((e) => e.type === 'metrics'), 30_000);
    fake.kubelet.disrupt(pod.metadata.name, 'eviction');
    const done = await settled(job.id);
    expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
    const all = await events(job.id);
    expect(all.some((e) => /will retry .*evicted by the kubelet: The node was low on resource: memory/.test(e.message))).toBe(true);
    // Both pods printed the same first lines (same keys): each is stored once.
    expect(all.filter((e) => e.message === 'Checkpoint saved at step 1')).toHaveLength(1);
  });

  it('cancel deletes the Job after the trainer had its grace period', async () => {
    const job = await client.fineTuning.jobs.create({ model: 'k8s-slow', training_file: fileId, seed: 60000 });
    await waitFor('the pod to run', async () => runningPod(job.id), 30_000);
    const cancelled = await client.fineTuning.jobs.cancel(job.id);
    expect(cancelled.status).toBe('cancelled');
    const name = trainingJobName(job.id, 1);
    await waitFor('the Job and its pod to be gone', async () => !fake.get('jobs', 'ml', name) && !fake.list('pods', 'ml', [['io.loraplane.job', job.id]]).length, 20_000);
    expect(fake.requests).toContainEqual(expect.stringMatching(new RegExp(`^DELETE /apis/batch/v1/namespaces/ml/jobs/${name}\\?.*propagationPolicy=Background`)));
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('cancelled');
  });

  it('a worker killed with -9 while a job trains: the next worker re-attaches by label and settles it once', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    // The app's own bootstrap key: a different LORAPLANE_API_KEY would revoke it (README, API keys).
    const apiKey = app.apiKey;
    const childEnv = testEnv({ ...env, PORT: port, LORAPLANE_API_KEY: apiKey, LOG_LEVEL: 'warn', WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000', LORAPLANE_ROLE: 'worker' });
    const procs: ChildProcess[] = [];
    const worker = () => {
      const child = spawn(process.execPath, [MAIN], { env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'ignore', 'inherit'] });
      procs.push(child);
      return child;
    };
    try {
      // The in-process app's worker must not pick the job: pause it, and let the child processes run it.
      await app.close();
      app = await startTestApp({ ...env, LORAPLANE_ROLE: 'api', QUEUE_PREFIX: childEnv.QUEUE_PREFIX! });
      client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: app.apiKey, maxRetries: 0 });
      const first = worker();
      const job = await client.fineTuning.jobs.create({ model: 'k8s-slow', training_file: fileId, seed: 4000 });
      await waitFor('the pod to run', async () => runningPod(job.id), 60_000);
      await waitFor('a first event', async () => (await events(job.id)).some((e) => e.type === 'metrics'), 30_000);
      first.kill('SIGKILL');
      worker();
      const done = await settled(job.id, 90_000);
      expect({ status: done.status, error: done.error }).toEqual({ status: 'succeeded', error: null });
      const all = await events(job.id);
      expect(all.filter((e) => e.type === 'metrics')).toHaveLength(4); // fake-slow's first line + 3 steps, each once
      expect(all.filter((e) => e.message === 'The job has successfully completed')).toHaveLength(1);
      expect(fake.requests.filter((r) => r.startsWith('POST /apis/batch/v1/namespaces/ml/jobs')).length).toBeGreaterThan(0);
    } finally {
      procs.forEach((p) => p.kill('SIGKILL'));
    }
  });
});
