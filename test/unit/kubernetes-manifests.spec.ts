import type { V1Job, V1Pod } from '@kubernetes/client-node';
import {
  AttemptLaunch,
  attemptSelector,
  buildSpecSecret,
  buildTrainingJob,
  ClusterPlacement,
  trainingJobName,
} from '../../src/training/runtime/kubernetes/kubernetes-manifests';
import { attemptOutcome, schedulingWait } from '../../src/training/runtime/kubernetes/kubernetes-outcome';

const cluster: ClusterPlacement = {
  namespace: 'ml',
  nodeSelector: { 'node.kubernetes.io/instance-type': 'p5.48xlarge' },
  tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  priorityClassName: 'training-low',
  kueueQueue: null,
  gpuResource: 'nvidia.com/gpu',
  ttlSecondsAfterFinished: 86400,
};
const launch: AttemptLaunch = {
  jobId: 'ftjob-AbCdEf0123456789XyZabcde',
  projectId: 'proj_Xy12',
  attempt: 2,
  model: 'gpt-oss-120b',
  image: 'ghcr.io/acme/gpt-oss-lora:1.0',
  command: ['python', '-m', 'trainer'],
  env: { LORAPLANE_JOB_SPEC: '{"output":{"url":"https://s3/x?X-Amz-Signature=abc"}}', LORAPLANE_SCRATCH_DIR: '/scratch' },
  resources: { memoryMb: 98304, cpus: 8, scratchMb: 65536 },
  gpuCount: 4,
};
const timing = { deadlineSeconds: 86550, stopGraceSeconds: 30 };

describe('training Job manifest', () => {
  const job = buildTrainingJob(launch, cluster, timing);
  const pod = job.spec!.template.spec!;
  const container = pod.containers[0];

  test('a lowercase DNS-1123 name from the job id and attempt, stable and distinct per attempt', () => {
    expect(job.metadata!.name).toMatch(/^loraplane-[0-9a-f]{20}-a2$/);
    expect(job.metadata!.name!.length).toBeLessThanOrEqual(63);
    expect(trainingJobName(launch.jobId, 2)).toBe(job.metadata!.name);
    expect(trainingJobName(launch.jobId, 3)).not.toBe(job.metadata!.name);
    expect(trainingJobName('ftjob-abcdef0123456789xyzabcde', 2)).not.toBe(job.metadata!.name); // case matters in ids
  });

  test('one pod, never retried by Kubernetes, with the deadline, TTL and disruption rule', () => {
    expect(job.spec).toMatchObject({ backoffLimit: 0, completions: 1, parallelism: 1, activeDeadlineSeconds: 86550, ttlSecondsAfterFinished: 86400 });
    expect(job.spec!.suspend).toBeUndefined();
    expect(job.spec!.podFailurePolicy!.rules).toEqual([{ action: 'FailJob', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }]);
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.terminationGracePeriodSeconds).toBe(30);
  });

  test('labels tie the Job and its pod to the loraplane job and attempt', () => {
    const labels = { 'io.loraplane.managed': 'true', 'io.loraplane.job': launch.jobId, 'io.loraplane.attempt': '2', 'io.loraplane.project': 'proj_Xy12', 'io.loraplane.model': 'gpt-oss-120b' };
    expect(job.metadata!.labels).toEqual(labels);
    expect(job.spec!.template.metadata!.labels).toEqual(labels);
    expect(attemptSelector(launch.jobId, 2)).toBe(`io.loraplane.job=${launch.jobId},io.loraplane.attempt=2`);
  });

  test('GPUs, CPU and memory from the catalog as requests and limits', () => {
    const q = { cpu: '8', memory: '98304Mi', 'nvidia.com/gpu': '4' };
    expect(container.resources).toEqual({ requests: q, limits: q });
    const cpuOnly = buildTrainingJob({ ...launch, gpuCount: 0 }, cluster, timing).spec!.template.spec!.containers[0];
    expect(cpuOnly.resources!.limits).toEqual({ cpu: '8', memory: '98304Mi' });
    const amd = buildTrainingJob(launch, { ...cluster, gpuResource: 'amd.com/gpu' }, timing).spec!.template.spec!.containers[0];
    expect(amd.resources!.limits!['amd.com/gpu']).toBe('4');
  });

  test("node selector, tolerations and priority class from the cluster's registration", () => {
    expect(pod.nodeSelector).toEqual(cluster.nodeSelector);
    expect(pod.tolerations).toEqual(cluster.tolerations);
    expect(pod.priorityClassName).toBe('training-low');
    const plain = buildTrainingJob(launch, { ...cluster, nodeSelector: {}, tolerations: [], priorityClassName: null }, timing).spec!.template.spec!;
    expect([plain.nodeSelector, plain.tolerations, plain.priorityClassName]).toEqual([undefined, undefined, undefined]);
  });

  test('hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no service account token', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, runAsNonRoot: true,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.volumes).toEqual([
      { name: 'scratch', emptyDir: { sizeLimit: '65536Mi' } },
      { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
    ]);
    expect(container.volumeMounts).toEqual([{ name: 'scratch', mountPath: '/scratch' }, { name: 'tmp', mountPath: '/tmp' }]);
  });

  test('the environment only by reference to the Secret: no value in the Job', () => {
    expect(container.envFrom).toEqual([{ secretRef: { name: `${job.metadata!.name}-env` } }]);
    expect(container.env).toBeUndefined();
    expect(JSON.stringify(job)).not.toContain('X-Amz-Signature');
    expect(job.metadata!.annotations).toBeUndefined();
  });

  test('a Kueue queue adds its label and creates the Job suspended', () => {
    const queued = buildTrainingJob(launch, { ...cluster, kueueQueue: 'team-a' }, timing);
    expect(queued.metadata!.labels!['kueue.x-k8s.io/queue-name']).toBe('team-a');
    expect(queued.spec!.suspend).toBe(true);
  });

  test('the Secret carries the values, is immutable and owned by the Job', () => {
    const secret = buildSpecSecret(launch, 'ml', { name: job.metadata!.name!, uid: 'uid-1' });
    expect(secret.metadata!.name).toBe(`${job.metadata!.name}-env`);
    expect(secret.immutable).toBe(true);
    expect(secret.metadata!.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata!.name, uid: 'uid-1' }]);
    expect(Buffer.from(secret.data!.LORAPLANE_JOB_SPEC, 'base64').toString()).toBe(launch.env.LORAPLANE_JOB_SPEC);
    expect(JSON.stringify(secret.metadata)).not.toContain('X-Amz-Signature');
  });
});

describe('outcome mapping', () => {
  const job = (conditions: Array<{ type: string; reason?: string; message?: string }>, extra: Partial<V1Job['spec']> = {}): V1Job => ({
    metadata: { namespace: 'ml', labels: { 'kueue.x-k8s.io/queue-name': 'team-a' } },
    spec: { template: {}, ...extra } as V1Job['spec'],
    status: { conditions: conditions.map((c) => ({ status: 'True', ...c })) },
  });
  const pod = (status: V1Pod['status'], spec: Partial<V1Pod['spec']> = {}): V1Pod => ({ spec: { containers: [{ name: 'trainer', image: 'img:1' }], ...spec }, status });
  const terminated = (exitCode: number, reason: string) => ({ containerStatuses: [{ name: 'trainer', image: 'img:1', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason } } }] });
  const waiting = (reason: string, message: string, phase = 'Pending') => ({ phase, containerStatuses: [{ name: 'trainer', image: 'img:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }] });

  test.each([
    ['Complete -> exit 0', job([{ type: 'Complete' }]), pod({ phase: 'Succeeded', ...terminated(0, 'Completed') }), { kind: 'exited', exitCode: 0, oomKilled: false, deadlineExceeded: false }],
    ['OOMKilled -> out of memory', job([{ type: 'Failed', reason: 'BackoffLimitExceeded' }]), pod({ phase: 'Failed', ...terminated(137, 'OOMKilled') }), { kind: 'exited', exitCode: 137, oomKilled: true, deadlineExceeded: false }],
    ['DeadlineExceeded -> timeout', job([{ type: 'Failed', reason: 'DeadlineExceeded' }]), null, { kind: 'exited', exitCode: 137, oomKilled: false, deadlineExceeded: true }],
    ['trainer error -> its exit code', job([{ type: 'Failed', reason: 'BackoffLimitExceeded' }]), pod({ phase: 'Failed', ...terminated(3, 'Error') }), { kind: 'exited', exitCode: 3, oomKilled: false, deadlineExceeded: false }],
    ['still running', job([]), pod({ phase: 'Running' }), { kind: 'running' }],
    ['suspended by Kueue', job([], { suspend: true }), null, { kind: 'waiting', reason: 'admission' }],
    ['waiting for its Secret', job([]), pod(waiting('CreateContainerConfigError', 'secret "x-env" not found')), { kind: 'waiting', reason: 'CreateContainerConfigError' }],
  ])('%s', (_name, j, p, expected) => {
    expect(attemptOutcome(j, p)).toEqual(expected);
  });

  test('eviction and preemption are disruptions, specific while the pod says why', () => {
    const evicted = pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: 'The node was low on resource: memory.' }] });
    expect(attemptOutcome(job([{ type: 'Failed', reason: 'PodFailurePolicy', message: 'Pod ml/p has condition DisruptionTarget matching FailJob rule at index 0' }]), evicted))
      .toEqual({ kind: 'disrupted', message: 'the training pod was evicted by the kubelet: The node was low on resource: memory.' });
    const preempted = pod({ phase: 'Failed', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: 'preempted' }] });
    expect(attemptOutcome(job([{ type: 'Failed', reason: 'PodFailurePolicy' }]), preempted)).toMatchObject({ kind: 'disrupted', message: 'the training pod was preempted by a higher-priority pod: preempted' });
    expect(attemptOutcome(job([{ type: 'Failed', reason: 'PodFailurePolicy', message: 'Pod ml/p has condition DisruptionTarget matching FailJob rule at index 0' }]), null))
      .toMatchObject({ kind: 'disrupted', message: expect.stringContaining('disrupted (evicted, preempted or its node drained)') });
  });

  test('an image that cannot be pulled is unstartable with a readable message', () => {
    expect(attemptOutcome(job([]), pod(waiting('ImagePullBackOff', 'Back-off pulling image "img:1"')))).toEqual({
      kind: 'unstartable', message: 'the trainer image "img:1" cannot be pulled (ImagePullBackOff: Back-off pulling image "img:1")',
    });
    expect(attemptOutcome(job([]), pod(waiting('CreateContainerError', 'no such file')))).toMatchObject({ kind: 'unstartable', message: expect.stringContaining('cannot be created') });
  });

  test('what a Job waits for: Kueue, the scheduler (its own words), or nothing once scheduled', () => {
    expect(schedulingWait(job([], { suspend: true }), null, '4 nvidia.com/gpu')).toBe('4 nvidia.com/gpu in namespace ml: admission by Kueue queue "team-a"');
    const unschedulable = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' }] });
    expect(schedulingWait(job([]), unschedulable, '4 nvidia.com/gpu')).toBe('4 nvidia.com/gpu in namespace ml: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.');
    expect(schedulingWait(job([]), pod({ phase: 'Pending' }, { nodeName: 'gpu-7' }), '4 nvidia.com/gpu')).toBeNull();
  });
});
