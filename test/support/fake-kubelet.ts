import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FakeKubeApi } from './fake-kube-api';

// Kubernetes objects as plain JSON: the fake stores and returns exactly what a client sends and reads.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

const NODE = 'fake-node-1';
const GPU = 'nvidia.com/gpu';

interface Output { text: string; ended: boolean; events: EventEmitter }
interface Running { pod: Obj; child: ChildProcess; oom: boolean; killTimer?: NodeJS.Timeout }

/**
 * The controllers of the fake cluster, written to behave as Kubernetes documents them for one-pod Jobs:
 * - Job controller: a pod per started Job (not while `suspend`), startTime, active/succeeded/failed, the Complete or
 *   Failed condition (BackoffLimitExceeded; PodFailurePolicy for a FailJob rule on DisruptionTarget;
 *   DeadlineExceeded after activeDeadlineSeconds, deleting the pod), ttlSecondsAfterFinished;
 * - scheduler: one node with `gpus` nvidia.com/gpu; a pod that does not fit is Unschedulable with the real message;
 * - kubelet: ErrImagePull/ImagePullBackOff for unknown images, CreateContainerConfigError until env Secrets exist,
 *   the container as a process on this machine (stdout and stderr both in the pod log, as the kubelet writes them),
 *   graceful deletion (SIGTERM, SIGKILL after terminationGracePeriodSeconds), OOMKilled and eviction on request;
 * - garbage collector: delete propagation to pods and owned Secrets (Orphan, the batch/v1 default, leaves pods).
 */
export class FakeKubelet {
  private gpusFree: number;
  private readonly outputs = new Map<string, Output>();
  private readonly running = new Map<string, Running>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly api: FakeKubeApi, gpus: number) {
    this.gpusFree = gpus;
  }

  output(podUid: string): Output | undefined {
    return this.outputs.get(podUid);
  }

  shutdown(): void {
    for (const t of this.timers) clearTimeout(t);
    for (const r of this.running.values()) r.child.kill('SIGKILL');
  }

  // ---- test controls -------------------------------------------------------------------------------------------

  /** The kernel's OOM killer ends the container: exit 137, reason OOMKilled. */
  oomKill(podName: string): void {
    const r = this.byName(podName);
    r.oom = true;
    r.child.kill('SIGKILL');
  }

  /** Node-pressure eviction by the kubelet, or preemption by the scheduler (the pod is deleted gracefully). */
  disrupt(podName: string, how: 'eviction' | 'preemption'): void {
    const r = this.byName(podName);
    const { namespace, name } = r.pod.metadata;
    const condition = how === 'eviction'
      ? { type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi.' }
      : { type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: `${NODE}: preempting to accommodate a higher priority pod` };
    const pod = this.api.update('pods', namespace, name, (p) => {
      p.status.conditions = [...(p.status.conditions ?? []), { ...condition, lastTransitionTime: new Date().toISOString() }];
      if (how === 'eviction') Object.assign(p.status, { reason: 'Evicted', message: condition.message });
    });
    if (how === 'eviction') r.child.kill('SIGKILL');
    else if (pod) this.deletePod(pod);
  }

  /** Kueue's admission: un-suspends the Job. */
  admit(namespace: string, jobName: string): void {
    const job = this.api.update('jobs', namespace, jobName, (j) => (j.spec.suspend = false));
    if (job) this.jobUpdated(job);
  }

  // ---- Job controller --------------------------------------------------------------------------------------------

  jobCreated(job: Obj): void {
    if (!job.spec.suspend) this.startJob(job);
  }

  jobUpdated(job: Obj): void {
    if (!job.spec.suspend && !job.status.startTime) this.startJob(job);
  }

  private startJob(job: Obj): void {
    const { namespace, name } = job.metadata;
    const started = this.api.update('jobs', namespace, name, (j) => Object.assign(j.status, { startTime: new Date().toISOString(), active: 1, ready: 0 }));
    if (!started) return;
    const suffix = randomBytes(3).toString('hex').slice(0, 5);
    const controller = { 'batch.kubernetes.io/controller-uid': job.metadata.uid, 'batch.kubernetes.io/job-name': name, 'controller-uid': job.metadata.uid, 'job-name': name };
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-${suffix}`,
        namespace,
        uid: crypto.randomUUID(),
        creationTimestamp: new Date().toISOString(),
        labels: { ...(job.spec.template.metadata?.labels ?? {}), ...controller },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: structuredClone(job.spec.template.spec),
      status: { phase: 'Pending', conditions: [] },
    };
    this.api.put('pods', pod, 'ADDED');
    this.later(() => this.schedule(), 5);
    const deadline = job.spec.activeDeadlineSeconds;
    if (deadline) this.later(() => this.deadlineExceeded(namespace, name, job.metadata.uid), deadline * 1000);
  }

  private deadlineExceeded(namespace: string, name: string, uid: string): void {
    const job = this.api.get('jobs', namespace, name);
    if (!job || job.metadata.uid !== uid || finished(job)) return;
    const deadline = job.spec.activeDeadlineSeconds;
    const elapsed = (Date.now() - Date.parse(job.status.startTime)) / 1000;
    if (elapsed < deadline) return void this.later(() => this.deadlineExceeded(namespace, name, uid), (deadline - elapsed) * 1000);
    this.finishJob(job, false, 'DeadlineExceeded', 'Job was active longer than specified deadline');
    for (const pod of this.podsOf(job)) this.deletePod(pod);
  }

  private podEnded(pod: Obj): void {
    const job = this.api.get('jobs', pod.metadata.namespace, pod.metadata.labels['job-name']);
    if (!job || job.metadata.uid !== pod.metadata.labels['controller-uid'] || finished(job)) return;
    if (pod.status.phase === 'Succeeded') return this.finishJob(job, true, 'CompletionsReached', 'Reached expected number of succeeded pods');
    const disrupted = pod.status.conditions?.some((c: Obj) => c.type === 'DisruptionTarget' && c.status === 'True');
    const matchesRule = disrupted && job.spec.podFailurePolicy?.rules?.some((r: Obj) => r.action === 'FailJob' && r.onPodConditions?.some((c: Obj) => c.type === 'DisruptionTarget'));
    if (matchesRule) return this.finishJob(job, false, 'PodFailurePolicy', `Pod ${pod.metadata.namespace}/${pod.metadata.name} has condition DisruptionTarget matching FailJob rule at index 0`);
    this.finishJob(job, false, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
  }

  private finishJob(job: Obj, succeeded: boolean, reason: string, message: string): void {
    const now = new Date().toISOString();
    const { namespace, name } = job.metadata;
    this.api.update('jobs', namespace, name, (j) => {
      const type = succeeded ? 'Complete' : 'Failed';
      const target = succeeded ? 'SuccessCriteriaMet' : 'FailureTarget';
      const cond = (t: string) => ({ type: t, status: 'True', reason, message, lastProbeTime: now, lastTransitionTime: now });
      j.status = { ...j.status, active: 0, ready: 0, [succeeded ? 'succeeded' : 'failed']: 1, conditions: [cond(target), cond(type)], ...(succeeded ? { completionTime: now } : {}) };
    });
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl !== undefined) this.later(() => this.api.get('jobs', namespace, name) && this.deleteJob(this.api.get('jobs', namespace, name)!, 'Background'), ttl * 1000);
  }

  deleteJob(job: Obj, propagation: string | undefined): void {
    const { namespace, name } = job.metadata;
    if (propagation === 'Background' || propagation === 'Foreground') return this.api.remove('jobs', namespace, name);
    // Orphan (the default for batch/v1 Jobs through the API): the pods keep running without their Job.
    for (const pod of this.podsOf(job)) this.api.update('pods', namespace, pod.metadata.name, (p) => (p.metadata.ownerReferences = []));
    this.api.remove('jobs', namespace, name);
  }

  // ---- scheduler and kubelet ---------------------------------------------------------------------------------

  private schedule(): void {
    const pending = [...this.api.objects.values()].filter((o) => o.kind === 'Pod' && !o.spec.nodeName && !o.metadata.deletionTimestamp);
    for (const pod of pending) {
      const gpus = Number(pod.spec.containers[0].resources?.limits?.[GPU] ?? 0);
      const { namespace, name } = pod.metadata;
      if (gpus > this.gpusFree) {
        this.api.update('pods', namespace, name, (p) => {
          p.status.conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: new Date().toISOString(),
            message: `0/1 nodes are available: 1 Insufficient ${GPU}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.` }];
        });
        continue;
      }
      this.gpusFree -= gpus;
      const bound = this.api.update('pods', namespace, name, (p) => {
        p.spec.nodeName = NODE;
        p.status.conditions = [{ type: 'PodScheduled', status: 'True', lastTransitionTime: new Date().toISOString() }];
      });
      if (bound) this.later(() => this.tryStart(bound.metadata.namespace, bound.metadata.name), 5);
    }
  }

  secretCreated(): void {
    for (const pod of [...this.api.objects.values()]) {
      if (pod.kind === 'Pod' && pod.spec.nodeName && pod.status.phase === 'Pending' && !pod.metadata.deletionTimestamp) this.later(() => this.tryStart(pod.metadata.namespace, pod.metadata.name), 5);
    }
  }

  private tryStart(namespace: string, name: string): void {
    const pod = this.api.get('pods', namespace, name);
    if (!pod || pod.status.phase !== 'Pending' || this.running.has(pod.metadata.uid) || pod.metadata.deletionTimestamp) return;
    const container = pod.spec.containers[0];
    const image: string = container.image;
    const entry = this.api.options.images[image];
    if (!entry) {
      return this.waiting(pod, 'ImagePullBackOff', `Back-off pulling image "${image}": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/${image}": not found`);
    }
    const env: Record<string, string> = {};
    for (const from of container.envFrom ?? []) {
      const ref = from.secretRef;
      if (!ref) continue;
      const secret = this.api.get('secrets', namespace, ref.name);
      if (!secret) return this.waiting(pod, 'CreateContainerConfigError', `secret "${ref.name}" not found`);
      for (const [k, v] of Object.entries(secret.data ?? {})) env[k] = Buffer.from(v as string, 'base64').toString('utf8');
    }
    for (const e of container.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) {
        env[e.name] = e.value ?? '';
        continue;
      }
      const secret = this.api.get('secrets', namespace, ref.name);
      if (!secret) return this.waiting(pod, 'CreateContainerConfigError', `secret "${ref.name}" not found`);
      if (!(ref.key in (secret.data ?? {}))) return this.waiting(pod, 'CreateContainerConfigError', `couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}`);
      env[e.name] = Buffer.from(secret.data[ref.key], 'base64').toString('utf8');
    }
    const command: string[] = container.command ?? entry;
    const child = spawn(command[0], command.slice(1), { env: { ...this.api.options.processEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: Output = { text: '', ended: false, events: new EventEmitter() };
    this.outputs.set(pod.metadata.uid, output);
    const write = (chunk: Buffer) => {
      output.text += chunk.toString('utf8');
      output.events.emit('data', chunk.toString('utf8'));
    };
    child.stdout!.on('data', write);
    child.stderr!.on('data', write);
    const run: Running = { pod, child, oom: false };
    this.running.set(pod.metadata.uid, run);
    const startedAt = new Date().toISOString();
    this.api.update('pods', namespace, name, (p) => {
      p.status = { ...p.status, phase: 'Running', startTime: startedAt, conditions: [...p.status.conditions, { type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: container.name, image, ready: true, restartCount: 0, started: true, state: { running: { startedAt } } }] };
    });
    child.on('close', (code, signal) => this.containerExited(run, code, signal, startedAt, output));
  }

  private containerExited(run: Running, code: number | null, signal: NodeJS.Signals | null, startedAt: string, output: Output): void {
    clearTimeout(run.killTimer);
    this.running.delete(run.pod.metadata.uid);
    const exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 1);
    const reason = run.oom ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
    const { namespace, name } = run.pod.metadata;
    const pod = this.api.update('pods', namespace, name, (p) => {
      p.status.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
      p.status.conditions = p.status.conditions.map((c: Obj) => (c.type === 'Ready' ? { ...c, status: 'False' } : c));
      p.status.containerStatuses[0] = { ...p.status.containerStatuses[0], ready: false, started: false,
        state: { terminated: { exitCode, reason, startedAt, finishedAt: new Date().toISOString(), containerID: `containerd://${name}` } } };
    });
    output.ended = true;
    output.events.emit('end');
    this.gpusFree += Number(run.pod.spec.containers[0].resources?.limits?.[GPU] ?? 0);
    if (pod) this.podEnded(pod);
    if (pod?.metadata.deletionTimestamp) this.api.remove('pods', namespace, name);
    this.later(() => this.schedule(), 5);
  }

  /** Graceful deletion: SIGTERM now, SIGKILL after the grace period, the object removed once the container ended. */
  deletePod(pod: Obj): void {
    const { namespace, name } = pod.metadata;
    const run = this.running.get(pod.metadata.uid);
    if (!run) return void this.api.remove('pods', namespace, name);
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    this.api.update('pods', namespace, name, (p) => {
      p.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString();
      p.metadata.deletionGracePeriodSeconds = grace;
    });
    run.child.kill('SIGTERM');
    run.killTimer = setTimeout(() => run.child.kill('SIGKILL'), grace * 1000);
  }

  private waiting(pod: Obj, reason: string, message: string): void {
    const container = pod.spec.containers[0];
    this.api.update('pods', pod.metadata.namespace, pod.metadata.name, (p) => {
      p.status.containerStatuses = [{ name: container.name, image: container.image, ready: false, restartCount: 0, started: false, state: { waiting: { reason, message } } }];
    });
  }

  private podsOf(job: Obj): Obj[] {
    return this.api.list('pods', job.metadata.namespace, [['controller-uid', job.metadata.uid]]);
  }

  private byName(podName: string): Running {
    const run = [...this.running.values()].find((r) => r.pod.metadata.name === podName);
    if (!run) throw new Error(`no running container in pod ${podName}`);
    return run;
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
}

function finished(job: Obj): boolean {
  return Boolean(job.status?.conditions?.some((c: Obj) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True'));
}
