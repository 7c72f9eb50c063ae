import { JobPlacement } from '../placement/job-placement';

/**
 * Labels every runtime puts on a training workload (container labels on Docker, pod labels on Kubernetes), so a
 * worker that restarts finds the workload of a job attempt again instead of starting a second one.
 */
export const WORKLOAD_LABEL = {
  managed: 'io.loraplane.managed',
  job: 'io.loraplane.job',
  attempt: 'io.loraplane.attempt',
  project: 'io.loraplane.project',
  model: 'io.loraplane.model',
} as const;

/** What a runtime needs to start one attempt of a job. */
export interface WorkloadLaunch {
  jobId: string;
  projectId: string;
  attempt: number;
  model: string;
  image: string;
  /** Overrides the image's command. */
  command?: string[];
  /** Passed to the workload at create time; never logged or stored by loraplane. */
  env: Record<string, string>;
  resources: { memoryMb: number; cpus: number; pids: number; scratchMb: number };
  /** GPUs the model needs (0 on CPU). */
  gpuCount: number;
  /** Where placement put the job (null when nothing was allocated, e.g. CPU models); the runtime reads its own kind. */
  placement: JobPlacement | null;
}

export interface WorkloadExit {
  exitCode: number;
  oomKilled: boolean;
}

/** A workload now: still running, or ended with its exit. */
export type WorkloadStatus = { running: true } | { running: false; exit: WorkloadExit };

export interface WorkloadOutput {
  /** Every stdout line from the start of the workload's output, in order; awaited before the next line. */
  onLine(line: string, lineNo: number): Promise<void>;
  onStderr(line: string): void;
}

/**
 * Where training workloads run: a Docker engine (DockerRuntime) or a Kubernetes cluster. JobRunner speaks only this;
 * a runtime translates its vendor's vocabulary (container, pod/Job) and errors (into DomainErrors: an unreachable
 * engine is `service_unavailable`, so the task is retried). Every method is safe to call twice.
 */
export interface TrainingRuntime {
  /** For messages and logs: "docker (local)", "docker (gpu-1)", "kubernetes (ns)". */
  readonly name: string;

  /** Reachable? For readiness checks. */
  ping(): Promise<void>;

  /** The workload of this job attempt, if one was created already. */
  find(jobId: string, attempt: number): Promise<string | null>;

  /**
   * Creates and starts the workload of this attempt, or finds the one created before and starts it if it never ran
   * (a worker died between create and start). One that already ran is left as it is: the caller settles it.
   */
  launch(launch: WorkloadLaunch): Promise<{ workloadId: string; created: boolean }>;

  /** Streams the workload's output from its first line until it ends (or `signal` aborts); resolves at the end. */
  follow(workloadId: string, output: WorkloadOutput, signal?: AbortSignal): Promise<void>;

  /** The workload's state now; null when it is gone. */
  inspect(workloadId: string): Promise<WorkloadStatus | null>;

  /** Waits until the workload has ended and returns its exit. */
  wait(workloadId: string): Promise<WorkloadExit>;

  /**
   * SIGTERM, then SIGKILL after the grace period. Resolves once the workload is confirmed stopped (or gone);
   * throws when that cannot be confirmed, so the caller keeps its GPUs and retries.
   */
  stop(workloadId: string, graceSeconds: number): Promise<void>;

  /** Removes an ended workload (gone already is fine). */
  remove(workloadId: string): Promise<void>;
}
