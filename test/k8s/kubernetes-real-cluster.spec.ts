import { KubeConfig } from '@kubernetes/client-node';
import { DomainError } from '../../src/common/domain-error';
import { AttemptLaunch } from '../../src/training/runtime/kubernetes/kubernetes-manifests';
import { KubernetesRuntime } from '../../src/training/runtime/kubernetes/kubernetes-runtime';

/**
 * KubernetesRuntime on a real cluster (opt-in: `KUBECONFIG=~/.kube/config npm run test:k8s`). CPU-only pods, so any
 * cluster works: K8S_TEST_NAMESPACE (default "default"; the kubeconfig's user needs the Role of
 * deploy/kubernetes/training there) and K8S_TEST_IMAGE (default node:20-bookworm-slim: any image with node, runnable
 * as uid 65534). Eviction and preemption cannot be caused on demand on a shared cluster: the fake server covers them.
 */
const kubeconfigPath = process.env.KUBECONFIG;
const namespace = process.env.K8S_TEST_NAMESPACE ?? 'default';
const image = process.env.K8S_TEST_IMAGE ?? 'node:20-bookworm-slim';
const run = `${Date.now().toString(36)}`;

function runtime(timeoutSeconds = 600): KubernetesRuntime {
  if (!kubeconfigPath) throw new Error('KUBECONFIG is not set: this tier runs against a real cluster (see README, "Kubernetes")');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return new KubernetesRuntime(
    { name: 'real', namespace, nodeSelector: {}, tolerations: [], priorityClassName: null, kueueQueue: null, gpuResource: 'nvidia.com/gpu', ttlSecondsAfterFinished: 600 },
    kc,
    { timeoutSeconds, stopGraceSeconds: 5, pollMs: 1000, deadlineMarginSeconds: 0 },
  );
}

let n = 0;
function launch(script: string, over: Partial<AttemptLaunch> = {}): AttemptLaunch {
  n += 1;
  return {
    jobId: `ftjob-k8stest${run}${n}`, projectId: 'proj_k8stest', attempt: 1, model: 'k8s-test', image,
    command: ['node', '-e', script], env: { LORAPLANE_JOB_SPEC: JSON.stringify({ n }) },
    resources: { memoryMb: 128, cpus: 0.2, scratchMb: 64 }, gpuCount: 0, ...over,
  };
}
const PRINT = (lines: number, ms: number) => `const s=JSON.parse(process.env.LORAPLANE_JOB_SPEC);let i=0;process.on('SIGTERM',()=>{console.log('got SIGTERM');process.exit(143)});const t=()=>{i++;console.log('line '+i+' of '+s.n);if(i<${lines})setTimeout(t,${ms})};t();`;

async function lines(rt: KubernetesRuntime, id: string): Promise<Array<[number, string]>> {
  const out: Array<[number, string]> = [];
  await rt.follow(id, { onLine: async (l, i) => void out.push([i, l]), onStderr: () => undefined });
  return out;
}

test('success: the spec from the Secret, every line once, exit 0, Job and Secret removed', async () => {
  const rt = runtime();
  const l = launch(PRINT(5, 200));
  const { workloadId } = await rt.launch(l);
  const out = await lines(rt, workloadId);
  expect(out.map(([i]) => i)).toEqual([1, 2, 3, 4, 5]);
  expect(out[0][1]).toBe(`line 1 of ${n}`);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 0, oomKilled: false });
  await rt.remove(workloadId);
  expect(await rt.find(l.jobId, 1)).toBeNull();
});

test('OOMKilled over the memory limit', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launch("const k=[];for(;;)k.push(Buffer.alloc(8*1024*1024,1));", { resources: { memoryMb: 64, cpus: 0.2, scratchMb: 64 } }));
  await lines(rt, workloadId);
  expect(await rt.wait(workloadId)).toEqual({ exitCode: 137, oomKilled: true });
  await rt.remove(workloadId);
});

test("Kubernetes' deadline: DeadlineExceeded", async () => {
  const rt = runtime(5);
  const { workloadId } = await rt.launch(launch(PRINT(1000, 500)));
  await lines(rt, workloadId);
  expect(await rt.outcome(workloadId)).toMatchObject({ kind: 'exited', deadlineExceeded: true });
  await rt.remove(workloadId);
});

test('stop: SIGTERM, then the Job and its pod are gone', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launch(PRINT(1000, 200)));
  const following = lines(rt, workloadId);
  await new Promise((r) => setTimeout(r, 15_000));
  await rt.stop(workloadId, 5);
  expect((await following).at(-1)?.[1]).toBe('got SIGTERM');
  expect(await rt.inspect(workloadId)).toBeNull();
});

test('a new runtime instance re-attaches by labels and reads the same line numbers', async () => {
  const l = launch(PRINT(10, 500));
  const { workloadId } = await runtime().launch(l);
  const again = runtime();
  expect(await again.find(l.jobId, 1)).toBe(workloadId);
  expect((await lines(again, workloadId)).map(([i]) => i)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  await again.remove(workloadId);
});

test('an image that cannot be pulled: a readable permanent error', async () => {
  const rt = runtime();
  const { workloadId } = await rt.launch(launch('0', { image: `registry.invalid/loraplane/missing:${run}` }));
  await lines(rt, workloadId);
  const err = (await rt.wait(workloadId).catch((e: unknown) => e)) as DomainError;
  expect(err).toBeInstanceOf(DomainError);
  expect(err.message).toMatch(/cannot be pulled/);
});
