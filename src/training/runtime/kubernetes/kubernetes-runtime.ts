import { ApiException, BatchV1Api, CoreV1Api, KubeConfig, V1Job, V1Pod, Watch } from '@kubernetes/client-node';
import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainError } from '../../../common/domain-error';
import { KubernetesLogFollower, LogRequestError } from './kubernetes-log-follower';
import {
  AttemptLaunch,
  attemptSelector,
  buildSpecSecret,
  buildTrainingJob,
  ClusterPlacement,
  specSecretName,
  TRAINER_CONTAINER,
  trainingJobName,
} from './kubernetes-manifests';
import { attemptOutcome, AttemptOutcome, schedulingWait } from './kubernetes-outcome';
import { TrainingRuntime, WorkloadExit, WorkloadOutput, WorkloadStatus } from '../training-runtime';

/** A registered cluster as the runtime needs it. */
export interface KubernetesTarget extends ClusterPlacement {
  name: string;
}

export interface KubernetesTiming {
  /** The wall-clock limit loraplane enforces itself (TRAINING_TIMEOUT_SECONDS). */
  timeoutSeconds: number;
  stopGraceSeconds: number;
  /** How often pod state is looked at while waiting for a container to start or for a stopped pod to go. */
  pollMs: number;
  /** Kubernetes' activeDeadlineSeconds = timeout + grace + this (default 120). */
  deadlineMarginSeconds?: number;
}

/**
 * Kubernetes' own deadline sits past loraplane's (which counts from the job's start and stops the pod with a grace
 * period): it is the backstop when no worker watches, and a worker that re-attaches still reports `timeout`.
 */
const DEADLINE_MARGIN_SECONDS = 120;
/** Long-poll length of one watch request; bookmarks keep the resourceVersion fresh in between. */
const WATCH_SECONDS = 240;

/**
 * Runs training attempts as batch/v1 Jobs in one namespace of a cluster. The workload id is the Job's name
 * (derived from job id and attempt), so a restarted worker finds the Job again by name and its pod by the Job's
 * uid. The attempt's environment travels in a Secret owned by the Job: an attempt is launched once that Secret
 * exists. Vendor errors become DomainErrors here: an unreachable API server is `service_unavailable` (retried).
 */
export class KubernetesRuntime implements TrainingRuntime {
  readonly name: string;
  private readonly logger = new Logger(KubernetesRuntime.name);
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly watcher: Watch;
  private readonly logs: KubernetesLogFollower;
  private readonly ns: string;

  constructor(private readonly target: KubernetesTarget, kubeConfig: KubeConfig, private readonly timing: KubernetesTiming) {
    this.name = `kubernetes (${target.name}/${target.namespace})`;
    this.ns = target.namespace;
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.watcher = new Watch(kubeConfig);
    this.logs = new KubernetesLogFollower(kubeConfig);
  }

  /** Reachable and allowed to list pods in the training namespace. */
  async ping(): Promise<void> {
    await this.call('list pods', () => this.core.listNamespacedPod({ namespace: this.ns, limit: 1 }));
  }

  /**
   * Creates the attempt's Job without its environment, so it waits for the cluster's scheduler (and Kueue) while
   * the job is still `queued`; its pod cannot start before launch() adds the Secret. Idempotent.
   */
  async submit(launch: AttemptLaunch): Promise<string> {
    const job = await this.ensureJob(launch);
    return job.metadata!.name!;
  }

  /** What a submitted attempt still waits for ("1 nvidia.com/gpu in namespace ml: 0/3 nodes are available: ..."), or null once scheduled. */
  async waitingFor(jobId: string, attempt: number, gpuCount: number): Promise<string | null> {
    const job = await this.readJob(trainingJobName(jobId, attempt));
    if (!job) return `the Job of attempt ${attempt} to be created`;
    const pod = await this.podOf(job);
    if (attemptOutcome(job, pod).kind === 'unstartable') return null; // launch and wait() report it as the job's error
    return schedulingWait(job, pod, `${gpuCount} ${this.target.gpuResource}`);
  }

  /**
   * The launched workload of this attempt, found by its labels (a restarted worker re-attaches with this): the Job
   * whose Secret exists. A Job without its Secret was only submitted, and launch() completes it.
   */
  async find(jobId: string, attempt: number): Promise<string | null> {
    const jobs = await this.call('list training Jobs', () => this.batch.listNamespacedJob({ namespace: this.ns, labelSelector: attemptSelector(jobId, attempt) }));
    const name = jobs.items.find((j) => !j.metadata?.deletionTimestamp)?.metadata?.name;
    return name && (await this.readSecret(specSecretName(name))) ? name : null;
  }

  /** Creates the Job (unless submitted already) and its Secret; its pod then starts. Safe to call twice. */
  async launch(launch: AttemptLaunch): Promise<{ workloadId: string; created: boolean }> {
    const job = await this.ensureJob(launch);
    const name = job.metadata!.name!;
    const secret = buildSpecSecret(launch, this.ns, { name, uid: job.metadata!.uid! });
    let created = true;
    try {
      await this.core.createNamespacedSecret({ namespace: this.ns, body: secret });
    } catch (err) {
      // Never the error's own text: a Status about a Secret may quote what was sent.
      if (statusOf(err) !== 409) throw this.translate(err, 'create the attempt Secret', false);
      created = false;
    }
    // The deadline counts from now, not from when the Job was submitted and began waiting for the scheduler.
    const waited = job.status?.startTime ? Math.max(0, Math.ceil((Date.now() - job.status.startTime.getTime()) / 1000)) : 0;
    const deadline = waited + this.deadlineSeconds();
    if (job.spec?.activeDeadlineSeconds !== deadline && created) {
      await this.call('set the Job deadline', () =>
        this.batch.patchNamespacedJob({ name, namespace: this.ns, body: [{ op: 'replace', path: '/spec/activeDeadlineSeconds', value: deadline }] }),
      );
    }
    if (created) this.logger.log({ jobId: launch.jobId, attempt: launch.attempt, workload: name, cluster: this.target.name }, 'launched training Job');
    return { workloadId: name, created };
  }

  /** Every line of the trainer's log (stdout and stderr, as the kubelet keeps them) from the first, until it ends. */
  async follow(workloadId: string, output: WorkloadOutput, signal?: AbortSignal): Promise<void> {
    let delivered = 0;
    while (!signal?.aborted) {
      const pod = await this.startedPod(workloadId, signal);
      if (!pod) return;
      let end: 'ended' | 'broken';
      try {
        end = await this.logs.stream({ namespace: this.ns, pod: pod.metadata!.name!, container: TRAINER_CONTAINER }, delivered, async (line, lineNo) => {
          await output.onLine(line, lineNo);
          delivered = lineNo;
        }, signal);
      } catch (err) {
        if (signal?.aborted) return;
        if (!(err instanceof LogRequestError) && !isConnectionError(err)) throw err;
        end = 'broken';
      }
      if (end === 'ended') {
        const now = await this.readPod(pod.metadata!.name!);
        if (!now || now.status?.containerStatuses?.[0]?.state?.terminated || now.metadata?.deletionTimestamp) return;
      }
      // The connection dropped (or the server ended it while the container runs): read again from the start.
      this.logger.warn({ workload: workloadId, delivered }, 'log stream of a training pod ended early; reconnecting');
      await sleep(this.timing.pollMs, undefined, { signal }).catch(() => undefined);
    }
  }

  async inspect(workloadId: string): Promise<WorkloadStatus | null> {
    const job = await this.readJob(workloadId);
    if (!job) return null;
    const outcome = attemptOutcome(job, await this.podOf(job));
    if (outcome.kind === 'running' || outcome.kind === 'waiting') return { running: true };
    if (outcome.kind === 'exited') return { running: false, exit: { exitCode: outcome.exitCode, oomKilled: outcome.oomKilled } };
    return { running: false, exit: { exitCode: 137, oomKilled: false } };
  }

  /** The attempt's outcome in loraplane's terms (null when the Job is gone). */
  async outcome(workloadId: string): Promise<AttemptOutcome | null> {
    const job = await this.readJob(workloadId);
    return job ? attemptOutcome(job, await this.podOf(job)) : null;
  }

  /**
   * Watches the Job until it has finished and maps the outcome. An evicted or preempted pod throws a retryable
   * error after the Job is deleted, so the queue's retry launches the attempt again; an image that cannot be pulled
   * throws a permanent, readable one.
   */
  async wait(workloadId: string): Promise<WorkloadExit> {
    for (;;) {
      const job = await this.readJob(workloadId);
      if (!job) return { exitCode: 137, oomKilled: false }; // deleted (cancel or stop) before it finished
      const outcome = attemptOutcome(job, await this.podOf(job));
      const exit = await this.settleOutcome(workloadId, outcome);
      if (exit) return exit;
      await this.watchJob(workloadId, job.metadata!.resourceVersion!);
    }
  }

  /** Deletes the Job: its pod gets SIGTERM, SIGKILL after the grace period; resolves once the pod is gone. */
  async stop(workloadId: string, graceSeconds: number): Promise<void> {
    const job = await this.readJob(workloadId);
    if (!job) return;
    await this.deleteJob(workloadId, graceSeconds);
    const until = Date.now() + (graceSeconds + 30) * 1000;
    while (Date.now() < until) {
      if (!(await this.podOf(job))) return;
      await sleep(this.timing.pollMs);
    }
    throw new DomainError('service_unavailable', `${this.name}: the pod of ${workloadId} did not stop within ${graceSeconds + 30} s`, null, { retryAfterSeconds: 5 });
  }

  async remove(workloadId: string): Promise<void> {
    await this.deleteJob(workloadId);
  }

  // ---- helpers ---------------------------------------------------------------------------------------------

  private deadlineSeconds(): number {
    return this.timing.timeoutSeconds + this.timing.stopGraceSeconds + (this.timing.deadlineMarginSeconds ?? DEADLINE_MARGIN_SECONDS);
  }

  private async ensureJob(launch: AttemptLaunch): Promise<V1Job> {
    const body = buildTrainingJob(launch, this.target, { deadlineSeconds: this.deadlineSeconds(), stopGraceSeconds: this.timing.stopGraceSeconds });
    try {
      return await this.batch.createNamespacedJob({ namespace: this.ns, body });
    } catch (err) {
      if (statusOf(err) !== 409) throw this.translate(err, 'create the training Job');
    }
    const existing = await this.readJob(body.metadata!.name!);
    if (!existing) throw new DomainError('service_unavailable', `${this.name}: the Job ${body.metadata!.name} vanished while being created`, null, { retryAfterSeconds: 1 });
    return existing;
  }

  /** null: the attempt ended or cannot start (the caller's wait() says why). */
  private async startedPod(workloadId: string, signal?: AbortSignal): Promise<V1Pod | null> {
    while (!signal?.aborted) {
      const job = await this.readJob(workloadId);
      if (!job) return null;
      const pod = await this.podOf(job);
      const outcome = attemptOutcome(job, pod);
      const state = pod?.status?.containerStatuses?.[0]?.state;
      if (pod && (state?.running || state?.terminated)) return pod;
      if (outcome.kind !== 'waiting' && outcome.kind !== 'running') return null;
      await sleep(this.timing.pollMs, undefined, { signal }).catch(() => undefined);
    }
    return null;
  }

  private async settleOutcome(workloadId: string, outcome: AttemptOutcome): Promise<WorkloadExit | null> {
    switch (outcome.kind) {
      case 'running':
      case 'waiting':
        return null;
      case 'exited':
        return { exitCode: outcome.exitCode, oomKilled: outcome.oomKilled };
      case 'disrupted':
        // The pod is gone with its GPUs; a new Job under the same name is the retry.
        await this.deleteJob(workloadId);
        // The reason is the cluster's own sentence about the pod, safe to show the tenant (details.userReason).
        throw new DomainError('service_unavailable', `${this.name}: ${outcome.message}; the attempt is started again`, null, { retryAfterSeconds: 5, details: { userReason: outcome.message } });
      case 'unstartable':
        await this.deleteJob(workloadId);
        throw new DomainError('internal', `${this.name}: ${outcome.message}`);
    }
  }

  /** One watch of the Job from `resourceVersion`: returns on any change, on a bookmark-only timeout, or on 410. */
  private async watchJob(name: string, resourceVersion: string): Promise<void> {
    const path = `/apis/batch/v1/namespaces/${this.ns}/jobs`;
    await new Promise<void>((resolve) => {
      let controller: AbortController | undefined;
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        controller?.abort();
        resolve();
      };
      const poll = setTimeout(done, Math.max(this.timing.pollMs * 10, 2000)); // pod-only changes (image pull) show up too
      this.watcher
        .watch(path, { fieldSelector: `metadata.name=${name}`, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_SECONDS }, (type) => {
          // Bookmarks only keep the connection's version fresh; any other event (or ERROR, e.g. 410 Expired) means
          // the Job should be read again.
          if (type !== 'BOOKMARK') done();
        }, () => {
          clearTimeout(poll);
          done();
        })
        .then((c) => {
          controller = c;
          if (settled) c.abort();
        })
        .catch(() => done());
    });
  }

  private async deleteJob(name: string, graceSeconds?: number): Promise<void> {
    try {
      // Background propagation: the pod and the Secret go with the Job (the API's default for Jobs orphans the pod).
      await this.batch.deleteNamespacedJob({ name, namespace: this.ns, propagationPolicy: 'Background', gracePeriodSeconds: graceSeconds });
    } catch (err) {
      if (statusOf(err) !== 404) throw this.translate(err, 'delete the training Job');
    }
  }

  private async podOf(job: V1Job): Promise<V1Pod | null> {
    const list = await this.call('list pods', () => this.core.listNamespacedPod({ namespace: this.ns, labelSelector: `controller-uid=${job.metadata!.uid}` }));
    return list.items[0] ?? null;
  }

  private readJob(name: string): Promise<V1Job | null> {
    return this.orNull('read the training Job', () => this.batch.readNamespacedJob({ name, namespace: this.ns }));
  }

  private readPod(name: string): Promise<V1Pod | null> {
    return this.orNull('read the training pod', () => this.core.readNamespacedPod({ name, namespace: this.ns }));
  }

  private async readSecret(name: string): Promise<boolean> {
    try {
      await this.core.readNamespacedSecret({ name, namespace: this.ns });
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw this.translate(err, 'read the attempt Secret', false);
    }
  }

  private async orNull<T>(action: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.translate(err, action);
    }
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err, action);
    }
  }

  /** A Status' own message where it is safe to repeat; 4xx other than 404/409/429 are configuration (RBAC, quota). */
  private translate(err: unknown, action: string, withMessage = true): DomainError {
    const status = statusOf(err);
    const detail = withMessage ? statusText(err) : `HTTP ${status ?? 'error'}`;
    const message = `${this.name}: ${action} failed: ${detail}`;
    if (status === 401 || status === 403 || status === 422 || status === 400) return new DomainError('internal', message, null, { cause: withMessage ? err : undefined });
    return new DomainError('service_unavailable', message, null, { cause: withMessage ? err : undefined, retryAfterSeconds: 5 });
  }
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function statusText(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? safeJson(err.body) : err.body;
    return `HTTP ${err.code}${(body as { message?: string })?.message ? `: ${(body as { message: string }).message}` : ''}`;
  }
  return (err as Error)?.message ?? String(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'EAI_AGAIN';
}
