import type { V1Job, V1Pod } from '@kubernetes/client-node';

/**
 * What a training attempt's Job and pod say, in loraplane's terms. Pure, so every mapping is unit-tested:
 * OOMKilled -> out of memory, DeadlineExceeded -> timeout, a DisruptionTarget (eviction, preemption, drain) ->
 * disrupted (retried), an image that cannot be pulled or a container that cannot be created -> unstartable (a
 * readable permanent error).
 */
export type AttemptOutcome =
  | { kind: 'running' }
  | { kind: 'waiting'; reason: string }
  | { kind: 'exited'; exitCode: number; oomKilled: boolean; deadlineExceeded: boolean }
  | { kind: 'disrupted'; message: string }
  | { kind: 'unstartable'; message: string };

/** Waiting reasons that do not fix themselves: the kubelet would back off forever. */
const FATAL_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerError', 'RunContainerError']);

export function attemptOutcome(job: V1Job, pod: V1Pod | null): AttemptOutcome {
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  const complete = job.status?.conditions?.find((c) => c.type === 'Complete' && c.status === 'True');
  const terminated = pod?.status?.containerStatuses?.[0]?.state?.terminated;
  const disruption = pod?.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (complete) return { kind: 'exited', exitCode: terminated?.exitCode ?? 0, oomKilled: false, deadlineExceeded: false };
  if (failed) {
    if (failed.reason === 'DeadlineExceeded') return { kind: 'exited', exitCode: terminated?.exitCode ?? 137, oomKilled: false, deadlineExceeded: true };
    if (terminated?.reason === 'OOMKilled') return { kind: 'exited', exitCode: terminated.exitCode, oomKilled: true, deadlineExceeded: false };
    if (disruption || pod?.status?.reason === 'Evicted' || (failed.reason === 'PodFailurePolicy' && /DisruptionTarget/.test(failed.message ?? ''))) {
      return { kind: 'disrupted', message: disruptionMessage(disruption?.reason, disruption?.message ?? pod?.status?.message ?? failed.message) };
    }
    const waiting = pod?.status?.containerStatuses?.[0]?.state?.waiting;
    if (!terminated && waiting && FATAL_WAITING.has(waiting.reason ?? '')) return unstartable(pod!, waiting.reason!, waiting.message);
    return { kind: 'exited', exitCode: terminated?.exitCode ?? 1, oomKilled: false, deadlineExceeded: false };
  }
  if (!pod) return { kind: 'waiting', reason: job.spec?.suspend ? 'admission' : 'the Job controller to create the pod' };
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
  if (waiting && FATAL_WAITING.has(waiting.reason ?? '')) return unstartable(pod, waiting.reason!, waiting.message);
  if (pod.status?.phase === 'Pending') return { kind: 'waiting', reason: waiting?.reason ?? 'the pod to start' };
  return { kind: 'running' };
}

function unstartable(pod: V1Pod, reason: string, message: string | undefined): AttemptOutcome {
  const image = pod.spec?.containers?.[0]?.image ?? 'the trainer image';
  const what = reason.includes('Image') ? `the trainer image "${image}" cannot be pulled` : 'the trainer container cannot be created';
  return { kind: 'unstartable', message: `${what} (${reason}${message ? `: ${message}` : ''})` };
}

/** Specific while the pod still says why; a preempted or drained pod is deleted, and then only the Job's message is left. */
function disruptionMessage(reason: string | undefined, message: string | undefined): string {
  const how = reason === 'PreemptionByScheduler' ? 'preempted by a higher-priority pod'
    : reason === 'EvictionByEvictionAPI' ? 'evicted (node drain or eviction API)'
    : reason === 'DeletionByTaintManager' ? 'evicted by a node taint'
    : reason === 'TerminationByKubelet' ? 'evicted by the kubelet'
    : 'disrupted (evicted, preempted or its node drained)';
  return `the training pod was ${how}${message ? `: ${message}` : ''}`;
}

/**
 * What a pod that has not started waits for, as the job's event says it: the scheduler's own message, or Kueue.
 * Null once the pod is scheduled (the GPUs are the job's).
 */
export function schedulingWait(job: V1Job, pod: V1Pod | null, gpus: string): string | null {
  if (job.spec?.suspend) {
    const queue = job.metadata?.labels?.['kueue.x-k8s.io/queue-name'];
    return `${gpus} in namespace ${job.metadata?.namespace}: admission by Kueue queue "${queue ?? '?'}"`;
  }
  if (!pod) return `${gpus} in namespace ${job.metadata?.namespace}: the Job controller has not created the pod yet`;
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (pod.spec?.nodeName || scheduled?.status === 'True') return null;
  return `${gpus} in namespace ${job.metadata?.namespace}${scheduled?.message ? `: ${scheduled.message}` : ': the scheduler has not placed the pod yet'}`;
}
