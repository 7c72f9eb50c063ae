import type { V1Job, V1Secret, V1Toleration } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';

/**
 * The Kubernetes objects of one training attempt: a batch/v1 Job (one pod, never restarted by Kubernetes: retries
 * are loraplane's attempts) and a Secret that carries the attempt's environment (the job spec with its presigned
 * URLs). The spec never lands in labels, annotations or the Job itself; the Secret is owned by the Job, so the
 * garbage collector deletes it with the Job.
 */

/** Pod and Job labels (same keys as Docker's container labels, so one vocabulary finds a job's workload anywhere). */
export const K8S_LABEL = {
  managed: 'io.loraplane.managed',
  job: 'io.loraplane.job',
  attempt: 'io.loraplane.attempt',
  project: 'io.loraplane.project',
  model: 'io.loraplane.model',
} as const;

export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
export const TRAINER_CONTAINER = 'trainer';
/** The user trainer images run as (jobs/CONTRACT.md: nobody). Numeric, so the kubelet can verify runAsNonRoot. */
export const TRAINER_UID = 65534;
const TMP_MB = 64;

/** What an admin registered about a cluster that shapes every Job sent to it. */
export interface ClusterPlacement {
  namespace: string;
  nodeSelector: Record<string, string>;
  tolerations: V1Toleration[];
  priorityClassName: string | null;
  /** Kueue LocalQueue name; the Job is created suspended and Kueue admits it. */
  kueueQueue: string | null;
  /** The extended resource GPUs are requested by. */
  gpuResource: string;
  /** How long Kubernetes keeps a finished Job (and its pod and logs) before deleting it. */
  ttlSecondsAfterFinished: number;
}

/** The parts of a launch the manifests need (structurally a subset of the runtime's launch). */
export interface AttemptLaunch {
  jobId: string;
  projectId: string;
  attempt: number;
  model: string;
  image: string;
  command?: string[];
  env: Record<string, string>;
  resources: { memoryMb: number; cpus: number; scratchMb: number };
  gpuCount: number;
}

export interface JobTiming {
  /** activeDeadlineSeconds: Kubernetes' own wall-clock limit, the backstop when no worker is watching. */
  deadlineSeconds: number;
  /** Between SIGTERM and SIGKILL (the contract's stop_grace_seconds). */
  stopGraceSeconds: number;
}

/**
 * A DNS-1123 name from the job id and attempt: job ids are mixed-case base62, Kubernetes names are lowercase, so the
 * name carries a hash of the id (the exact id is in the labels).
 */
export function trainingJobName(jobId: string, attempt: number): string {
  return `loraplane-${createHash('sha256').update(jobId).digest('hex').slice(0, 20)}-a${attempt}`;
}

export function specSecretName(jobName: string): string {
  return `${jobName}-env`;
}

export function attemptLabels(launch: Pick<AttemptLaunch, 'jobId' | 'projectId' | 'attempt' | 'model'>): Record<string, string> {
  return {
    [K8S_LABEL.managed]: 'true',
    [K8S_LABEL.job]: launch.jobId,
    [K8S_LABEL.attempt]: String(launch.attempt),
    [K8S_LABEL.project]: launch.projectId,
    [K8S_LABEL.model]: launch.model,
  };
}

/** `key=value,...` selecting the pods and Jobs of one attempt. */
export function attemptSelector(jobId: string, attempt: number): string {
  return `${K8S_LABEL.job}=${jobId},${K8S_LABEL.attempt}=${attempt}`;
}

export function buildTrainingJob(launch: AttemptLaunch, cluster: ClusterPlacement, timing: JobTiming): V1Job {
  const name = trainingJobName(launch.jobId, launch.attempt);
  const labels = attemptLabels(launch);
  const jobLabels = cluster.kueueQueue ? { ...labels, [KUEUE_QUEUE_LABEL]: cluster.kueueQueue } : labels;
  const secret = specSecretName(name);
  const quantities: Record<string, string> = { cpu: String(launch.resources.cpus), memory: `${launch.resources.memoryMb}Mi` };
  if (launch.gpuCount > 0) quantities[cluster.gpuResource] = String(launch.gpuCount);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: cluster.namespace, labels: jobLabels },
    spec: {
      // One pod per attempt: a failed pod fails the attempt, and loraplane decides what happens next.
      backoffLimit: 0,
      completions: 1,
      parallelism: 1,
      activeDeadlineSeconds: timing.deadlineSeconds,
      ttlSecondsAfterFinished: cluster.ttlSecondsAfterFinished,
      // Kueue admits a suspended Job by un-suspending it; without a queue the Job starts at once.
      suspend: cluster.kueueQueue ? true : undefined,
      // A disrupted pod (evicted, preempted, node drained) fails the Job with a reason loraplane can tell apart
      // from a trainer failure, so the attempt is retried instead of reported as the trainer's fault.
      podFailurePolicy: { rules: [{ action: 'FailJob', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] },
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: timing.stopGraceSeconds,
          priorityClassName: cluster.priorityClassName ?? undefined,
          nodeSelector: Object.keys(cluster.nodeSelector).length ? cluster.nodeSelector : undefined,
          tolerations: cluster.tolerations.length ? cluster.tolerations : undefined,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: TRAINER_UID,
            runAsGroup: TRAINER_UID,
            fsGroup: TRAINER_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: TRAINER_CONTAINER,
              image: launch.image,
              imagePullPolicy: 'IfNotPresent',
              command: launch.command,
              // Every variable from the attempt's Secret: the values are in no field of the Job or pod, and the Job
              // can be submitted (to wait for the scheduler) before the spec exists.
              envFrom: [{ secretRef: { name: secret } }],
              resources: { requests: quantities, limits: quantities },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                privileged: false,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [
                { name: 'scratch', mountPath: '/scratch' },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'scratch', emptyDir: { sizeLimit: `${launch.resources.scratchMb}Mi` } },
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: `${TMP_MB}Mi` } },
          ],
        },
      },
    },
  };
}

/** The attempt's environment as a Secret owned by its Job (created after the Job, which gives it its uid). */
export function buildSpecSecret(launch: AttemptLaunch, namespace: string, owner: { name: string; uid: string }): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: specSecretName(owner.name),
      namespace,
      labels: attemptLabels(launch),
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: owner.name, uid: owner.uid }],
    },
    type: 'Opaque',
    immutable: true,
    data: Object.fromEntries(Object.entries(launch.env).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
  };
}
