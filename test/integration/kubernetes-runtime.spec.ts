import { KubeConfig } from '@kubernetes/client-node';
import path from 'node:path';
import { DomainError } from '../../src/common/domain-error';
import { AttemptLaunch, trainingJobName } from '../../src/training/runtime/kubernetes/kubernetes-manifests';
import { KubernetesRuntime, KubernetesTarget } from '../../src/training/runtime/kubernetes/kubernetes-runtime';
import { FakeKubeApi } from '../support/fake-kube-api';

/**
 * KubernetesRuntime against the fake API server (test/support/fake-kube-api.ts), whose pods run as processes here:
 * every outcome the runtime maps, the log follow across dropped connections, and the watch across 410 Expired.
 * The JobRunner lifecycle through it (with Postgres, the queue and kill -9 of a worker process) is
 * test/e2e/kubernetes-lifecycle.e2e.spec.ts.
 */
const TRAINER = path.join(__dirname, '../fixtures/kube-trainer.js');
const IMAGE = 'registry.example/loraplane/kube-trainer:1';
const SECRET_MARK = 'presigned-url-signature-5f2c1e';

const target: KubernetesTarget = {
  name: 'fake',
  namespace: 'ml',
  nodeSelector: { 'nvidia.com/gpu.present': 'true' },
  tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  priorityClassName: 'training',
  kueueQueue: null,
  gpuResource: 'nvidia.com/gpu',
  ttlSecondsAfterFinished: 3600,
};

let fake: FakeKubeApi;
let kubeConfig: KubeConfig;
const runtime = (over: Partial<KubernetesTarget> = {}, timeoutSeconds = 600) =>
  new KubernetesRuntime({ ...target, ...over }, kubeConfig, { timeoutSeconds, stopGraceSeconds: 2, pollMs: 50, deadlineMarginSeconds: 0 });

let seq = 0;
function launchOf(script: Record<string, unknown>, over: Partial<AttemptLaunch> = {}): AttemptLaunch {
  seq += 1;
  return {
    jobId: `ftjob-Kube${seq}Test`,
    projectId: 'proj_Test',
    attempt: 1,
    model: 'gpt-oss-20b',
    image: IMAGE,
    env: { LORAPLANE_JOB_SPEC: JSON.stringify({ ...script, secret: SECRET_MARK }) },
    resources: { memoryMb: 1024, cpus: 1, scratchMb: 256 },
    gpuCount: 1,
    ...over,
  };
}

async function collect(rt: KubernetesRuntime, name: string, onLine?: (n: number) => void): Promise<Array<[number, string]>> {
  const lines: Array<[number, string]> = [];
  await rt.follow(name, {
    onLine: async (line, n) => {
      lines.push([n, line]);
      onLine?.(n);
    },
    onStderr: () => undefined,
  });
  return lines;
}

const messages = (lines: Array<[number, string]>) => lines.map(([, l]) => (JSON.parse(l) as { message: string }).message);

beforeEach(async () => {
  fake = new FakeKubeApi({ gpus: 2, images: { [IMAGE]: [process.execPath, TRAINER] }, bookmarkMs: 50 });
  await fake.start();
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(fake.kubeconfig());
});

afterEach(async () => {
  await fake.stop();
});

test('success: Job and Secret as documented, every line once and in order, exit 0, nothing of the spec outside the Secret', async () => {
  const rt = runtime();
  const launch = launchOf({ lines: 5 });
  expect(await rt.find(launch.jobId, 1)).toBeNull();
  const { workloadId, created } = await rt.launch(launch);
  expect(created).toBe(true);
  expect(await rt.launch(launch)).toEqual({ workloadId, created: false }); // safe twice
  expect(await rt.find(launch.jobId, 1)).toBe(workloadId);

  const lines = await collect(rt, workloadId);
  expect(lines.map(([n]) => n)).toEqual([1, 2, 3, 4, 5]);
  expect(messages(lines)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 0, oomKilled: false });

  const job = fake.get('jobs', 'ml', workloadId)!;
  const pod = fake.list('pods', 'ml', [['controller-uid', job.metadata.uid]])[0];
  const secret = fake.get('secrets', 'ml', `${workloadId}-env`)!;
  expect(JSON.stringify([job, pod])).not.toContain(SECRET_MARK);
  expect(Buffer.from(secret.data.LORAPLANE_JOB_SPEC, 'base64').toString()).toContain(SECRET_MARK);
  expect(secret.metadata.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: workloadId, uid: job.metadata.uid }]);
  expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(602); // timeout + grace, counted from the launch

  await rt.remove(workloadId);
  expect(fake.get('jobs', 'ml', workloadId)).toBeUndefined();
  expect(fake.get('secrets', 'ml', `${workloadId}-env`)).toBeUndefined(); // garbage-collected with its owner
  expect(await rt.find(launch.jobId, 1)).toBeNull();
});

test('a submitted Job waits for the scheduler with its message, then starts once GPUs free up and the Secret exists', async () => {
  const rt = runtime();
  const big = launchOf({ lines: 1 }, { gpuCount: 4 });
  await rt.submit(big);
  await until(async () => (await rt.waitingFor(big.jobId, 1, 4))?.includes('Insufficient') ?? false);
  expect(await rt.waitingFor(big.jobId, 1, 4)).toBe(
    '4 nvidia.com/gpu in namespace ml: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.',
  );
  expect(await rt.find(big.jobId, 1)).toBeNull(); // submitted, not launched

  const fits = launchOf({ lines: 2 }, { gpuCount: 2 });
  await rt.submit(fits);
  await until(async () => (await rt.waitingFor(fits.jobId, 1, 2)) === null);
  // Scheduled, but its container cannot start before launch() creates the Secret.
  await until(async () => fake.list('pods', 'ml', [['io.loraplane.job', fits.jobId]])[0]?.status.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError');
  const { workloadId } = await rt.launch(fits);
  expect(messages(await collect(rt, workloadId))).toEqual(['line 1', 'line 2']);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 0, oomKilled: false });

  const queued = runtime({ kueueQueue: 'team-a' });
  const viaKueue = launchOf({ lines: 1 });
  await queued.submit(viaKueue);
  expect(await queued.waitingFor(viaKueue.jobId, 1, 1)).toBe('1 nvidia.com/gpu in namespace ml: admission by Kueue queue "team-a"');
  fake.kubelet.admit('ml', trainingJobName(viaKueue.jobId, 1));
  await until(async () => (await queued.waitingFor(viaKueue.jobId, 1, 1)) === null);
});

test('OOMKilled maps to oomKilled with exit 137', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launchOf({ lines: 1000, interval_ms: 20 }));
  const following = collect(rt, workloadId, (n) => n === 3 && fake.kubelet.oomKill(podName(workloadId)));
  expect((await following).length).toBeGreaterThanOrEqual(3);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 137, oomKilled: true });
  expect(await rt.outcome(workloadId)).toEqual({ kind: 'exited', exitCode: 137, oomKilled: true, deadlineExceeded: false });
});

test("Kubernetes' deadline ends a Job that outlives it: DeadlineExceeded, the pod stopped", async () => {
  const rt = runtime({}, 1); // activeDeadlineSeconds = 1 + 2 (grace) + 0
  const { workloadId } = await rt.launch(launchOf({ lines: 1000, interval_ms: 50 }));
  const lines = await collect(rt, workloadId);
  expect(messages(lines)).toContain('got SIGTERM'); // graceful: the trainer could checkpoint
  expect(await rt.outcome(workloadId)).toMatchObject({ kind: 'exited', deadlineExceeded: true, oomKilled: false });
  // The pod is deleted with the Job's failure, so its exit code is gone: the runtime reports a kill.
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 137, oomKilled: false });
});

test.each(['eviction', 'preemption'] as const)('%s: a retryable error, the Job deleted, and the retry launches the attempt again', async (how) => {
  const rt = runtime();
  const launch = launchOf({ lines: 1000, interval_ms: 20 });
  const { workloadId } = await rt.launch(launch);
  await collect(rt, workloadId, (n) => n === 2 && fake.kubelet.disrupt(podName(workloadId), how));
  const err = await rt.wait(workloadId).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DomainError);
  expect((err as DomainError).code).toBe('service_unavailable');
  // An evicted pod stays (phase Failed) and says why; a preempted one is deleted, leaving the Job's own message.
  expect((err as DomainError).message).toMatch(how === 'eviction'
    ? /the training pod was evicted by the kubelet: The node was low on resource: memory/
    : /the training pod was disrupted \(evicted, preempted or its node drained\): Pod ml\/\S+ has condition DisruptionTarget matching FailJob rule/);
  expect((err as DomainError).message).toContain('the attempt is started again');
  await until(async () => !fake.get('jobs', 'ml', workloadId));
  expect(await rt.find(launch.jobId, 1)).toBeNull();

  const retry = await rt.launch({ ...launch, env: { LORAPLANE_JOB_SPEC: JSON.stringify({ lines: 2 }) } });
  expect(retry).toEqual({ workloadId, created: true });
  expect(messages(await collect(rt, workloadId))).toEqual(['line 1', 'line 2']);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 0, oomKilled: false });
});

test('an image that cannot be pulled is a permanent, readable error', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launchOf({}, { image: 'registry.example/missing:7' }));
  await rt.follow(workloadId, { onLine: async () => undefined, onStderr: () => undefined });
  const err = (await rt.wait(workloadId).catch((e: unknown) => e)) as DomainError;
  expect(err.code).toBe('internal');
  expect(err.message).toMatch(/the trainer image "registry\.example\/missing:7" cannot be pulled \(ImagePullBackOff: Back-off pulling image/);
  expect(fake.get('jobs', 'ml', workloadId)).toBeUndefined();
});

test('stop (cancel): SIGTERM to the trainer, the Job deleted with its pod and Secret once the pod is gone', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launchOf({ lines: 1000, interval_ms: 20 }));
  let third!: () => void;
  const followed = new Promise<void>((resolve) => (third = resolve));
  const following = collect(rt, workloadId, (n) => n === 3 && third());
  await followed;
  await rt.stop(workloadId, 2);
  expect(fake.list('pods', 'ml')).toEqual([]);
  expect(fake.get('jobs', 'ml', workloadId)).toBeUndefined();
  expect(fake.get('secrets', 'ml', `${workloadId}-env`)).toBeUndefined();
  expect(messages(await following).at(-1)).toBe('got SIGTERM');
  expect(fake.requests.some((r) => r.startsWith(`DELETE /apis/batch/v1/namespaces/ml/jobs/${workloadId}`))).toBe(true);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 137, oomKilled: false });
});

test('dropped log streams and watches: every line exactly once with its number; a 410 Expired watch is recovered', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launchOf({ lines: 60, interval_ms: 15 }));
  const drops = setInterval(() => fake.dropLogStreams(), 150);
  const lines = await collect(rt, workloadId).finally(() => clearInterval(drops));
  expect(lines.map(([n]) => n)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  expect(messages(lines)).toEqual(Array.from({ length: 60 }, (_, i) => `line ${i + 1}`));
  expect(fake.requests.filter((r) => r.includes('/log?')).length).toBeGreaterThan(1); // it did reconnect

  const second = await rt.launch(launchOf({ lines: 40, interval_ms: 25 }));
  const watchRequests = () => fake.requests.filter((r) => r.startsWith('GET /apis/batch/v1/namespaces/ml/jobs?') && r.includes('watch=true'));
  fake.expireNextWatch();
  const waiting = rt.wait(second.workloadId);
  await until(async () => watchRequests().length >= 2); // the first got 410 Expired; the runtime read the Job and watched again
  fake.dropWatches();
  await until(async () => watchRequests().length >= 3); // and again after the connection dropped
  expect(await waiting).toEqual({ exitCode: 0, oomKilled: false });
  const watches = watchRequests();
  for (const w of watches) {
    expect(w).toContain('allowWatchBookmarks=true');
    expect(w).toMatch(/resourceVersion=\d+/);
  }
});

test('a new runtime instance (a restarted worker) finds the attempt by its labels and re-reads the same line numbers', async () => {
  const first = runtime();
  const launch = launchOf({ lines: 8, interval_ms: 20 });
  const { workloadId } = await first.launch(launch);
  const abort = new AbortController();
  const seen: number[] = [];
  await first.follow(workloadId, { onLine: async (_l, n) => { seen.push(n); if (n === 3) abort.abort(); }, onStderr: () => undefined }, abort.signal);

  const second = runtime();
  expect(await second.find(launch.jobId, 1)).toBe(workloadId);
  const again = await collect(second, workloadId);
  expect(again.map(([n]) => n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(fake.requests).toContainEqual(expect.stringContaining(`labelSelector=${encodeURIComponent(`io.loraplane.job=${launch.jobId},io.loraplane.attempt=1`)}`));
});

function podName(jobName: string): string {
  const pod = fake.list('pods', 'ml').find((p) => p.metadata.labels['job-name'] === jobName && p.status.phase === 'Running');
  if (!pod) throw new Error(`no running pod for ${jobName}`);
  return pod.metadata.name;
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
