import { Injectable, Logger } from '@nestjs/common';
import Docker from 'dockerode';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import readline from 'node:readline';
import { DomainError } from '../../common/domain-error';
import { Config } from '../../config/config';
import { TrainingRuntime, WORKLOAD_LABEL, WorkloadExit, WorkloadLaunch, WorkloadOutput, WorkloadStatus } from './training-runtime';

/** Where a Docker engine listens: unix:///path, or tcp://host:port with TLS file paths on this machine. */
export interface EngineAddress {
  url: string;
  tls?: { ca: string; cert: string; key: string } | null;
}

/**
 * Runs training workloads as containers on one Docker engine. Containers are found again by label, so a worker that
 * restarts re-attaches instead of starting a second copy. Every engine call has a deadline; vendor errors become
 * DomainErrors here. Built per engine by TrainingRuntimes; nothing connects until a method is called.
 */
export class DockerRuntime implements TrainingRuntime {
  private readonly logger = new Logger(DockerRuntime.name);
  private readonly docker: Docker;
  readonly name: string;

  constructor(private readonly config: Config, private readonly engineName: string, engine: EngineAddress) {
    this.docker = new Docker(dockerOptions(engine));
    this.name = `docker (${engineName})`;
  }

  async ping(): Promise<void> {
    await this.call('ping', (abortSignal) => pingWithSignal(this.docker, abortSignal));
  }

  async find(jobId: string, attempt: number): Promise<string | null> {
    const list = await this.call('list containers', (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label: [`${WORKLOAD_LABEL.job}=${jobId}`, `${WORKLOAD_LABEL.attempt}=${attempt}`] }, abortSignal }),
    );
    return list[0]?.Id ?? null;
  }

  async launch(launch: WorkloadLaunch): Promise<{ workloadId: string; created: boolean }> {
    const existing = await this.find(launch.jobId, launch.attempt);
    const workloadId = existing ?? (await this.create(launch));
    // A container created by a worker that died between create and start has never run; one that ran is settled.
    const info = await this.call('inspect container', (abortSignal) => this.docker.getContainer(workloadId).inspect({ abortSignal }));
    if (info.State.Status === 'created') {
      await this.call('start container', (abortSignal) => this.docker.getContainer(workloadId).start({ abortSignal }));
    }
    return { workloadId, created: !existing };
  }

  private async create(launch: WorkloadLaunch): Promise<string> {
    const { resources } = launch;
    const gpuDeviceIds = launch.placement?.runtime === 'docker' ? launch.placement.gpu_indices.map(String) : [];
    const container = await this.call('create container', (abortSignal) =>
      this.docker.createContainer({
        name: `loraplane-${launch.jobId}-a${launch.attempt}`,
        Image: launch.image,
        Cmd: launch.command,
        Env: Object.entries(launch.env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          [WORKLOAD_LABEL.managed]: 'true',
          [WORKLOAD_LABEL.job]: launch.jobId,
          [WORKLOAD_LABEL.attempt]: String(launch.attempt),
          [WORKLOAD_LABEL.project]: launch.projectId,
          [WORKLOAD_LABEL.model]: launch.model,
        },
        User: '65534:65534',
        WorkingDir: '/app',
        HostConfig: {
          Init: true, // the trainer gets SIGTERM and its children are reaped
          ReadonlyRootfs: true,
          Tmpfs: { '/scratch': `rw,nosuid,nodev,size=${resources.scratchMb}m`, '/tmp': 'rw,nosuid,nodev,size=64m' },
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          Memory: resources.memoryMb * 1024 * 1024,
          MemorySwap: resources.memoryMb * 1024 * 1024,
          NanoCpus: Math.round(resources.cpus * 1e9),
          PidsLimit: resources.pids,
          NetworkMode: this.config.env.TRAINING_NETWORK,
          DeviceRequests: gpuDeviceIds.length ? [{ Driver: 'nvidia', DeviceIDs: gpuDeviceIds, Capabilities: [['gpu']] }] : undefined,
        },
        abortSignal,
      } as Docker.ContainerCreateOptions),
    );
    this.logger.log({ jobId: launch.jobId, attempt: launch.attempt, workloadId: container.id, engine: this.engineName }, 'created training container');
    return container.id;
  }

  /** The log stream itself has no deadline (a quiet trainer is fine); opening it has. */
  async follow(workloadId: string, output: WorkloadOutput, signal?: AbortSignal): Promise<void> {
    const container = this.docker.getContainer(workloadId);
    const stream = await this.call('follow logs', () => container.logs({ follow: true, stdout: true, stderr: true }));
    const stop = () => (stream as unknown as { destroy(): void }).destroy();
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
    const out = new PassThrough();
    const err = new PassThrough();
    container.modem.demuxStream(stream, out, err);
    const end = () => { out.end(); err.end(); };
    stream.on('end', end);
    stream.on('error', end);
    stream.on('close', end);
    readline.createInterface({ input: err }).on('line', (line) => output.onStderr(line));
    let lineNo = 0;
    for await (const line of readline.createInterface({ input: out, crlfDelay: Infinity })) {
      if (signal?.aborted) break;
      await output.onLine(line, ++lineNo);
    }
    signal?.removeEventListener('abort', stop);
  }

  async inspect(workloadId: string): Promise<WorkloadStatus | null> {
    try {
      const info = await this.withDeadline('inspect container', (abortSignal) => this.docker.getContainer(workloadId).inspect({ abortSignal }));
      if (info.State.Running) return { running: true };
      return { running: false, exit: { exitCode: info.State.ExitCode, oomKilled: Boolean(info.State.OOMKilled) } };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.translate(err, 'inspect container');
    }
  }

  /** No deadline on the wait itself: a run lasts as long as it lasts (JobRunner enforces the wall-clock limit). */
  async wait(workloadId: string): Promise<WorkloadExit> {
    const container = this.docker.getContainer(workloadId);
    const res = await this.call('wait for container', () => container.wait(), 0);
    let info = await this.call('inspect container', (abortSignal) => container.inspect({ abortSignal }));
    // Under cgroup v2 the engine can record the container's exit before the kernel's OOM event, and sets OOMKilled a
    // moment later: a SIGKILL exit (137) is looked at again before it is reported as a plain crash.
    for (let i = 0; i < 4 && res.StatusCode === 137 && !info.State.OOMKilled; i++) {
      await new Promise((r) => setTimeout(r, 250));
      info = await this.call('inspect container', (abortSignal) => container.inspect({ abortSignal }));
    }
    return { exitCode: res.StatusCode, oomKilled: Boolean(info.State.OOMKilled) };
  }

  /** Docker's stop returns once the container has exited (SIGKILL after the grace period): that is the confirmation. */
  async stop(workloadId: string, graceSeconds: number): Promise<void> {
    try {
      const deadline = this.config.env.DOCKER_CALL_TIMEOUT_MS + graceSeconds * 1000;
      await this.withDeadline('stop container', (abortSignal) => this.docker.getContainer(workloadId).stop({ t: graceSeconds, abortSignal }), deadline);
    } catch (err) {
      if (statusOf(err) === 304 || statusOf(err) === 404) return; // already stopped or gone
      throw this.translate(err, 'stop container');
    }
  }

  async remove(workloadId: string): Promise<void> {
    try {
      await this.withDeadline('remove container', (abortSignal) => this.docker.getContainer(workloadId).remove({ force: true, abortSignal }));
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return; // gone, or removal already in progress
      throw this.translate(err, 'remove container');
    }
  }

  private async call<T>(action: string, fn: (signal: AbortSignal | undefined) => Promise<T>, timeoutMs = this.config.env.DOCKER_CALL_TIMEOUT_MS): Promise<T> {
    try {
      return await this.withDeadline(action, fn, timeoutMs);
    } catch (err) {
      throw this.translate(err, action);
    }
  }

  /**
   * Aborts the request and rejects once `timeoutMs` passes (0: no deadline). The race is the guarantee: a call that
   * ignores its signal still gives up in time.
   */
  private async withDeadline<T>(action: string, fn: (signal: AbortSignal | undefined) => Promise<T>, timeoutMs = this.config.env.DOCKER_CALL_TIMEOUT_MS): Promise<T> {
    if (!timeoutMs) return fn(undefined);
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DockerTimeout(action, timeoutMs));
      }, timeoutMs);
    });
    try {
      return await Promise.race([fn(controller.signal), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private translate(err: unknown, action: string): DomainError {
    if (err instanceof DomainError) return err;
    const status = statusOf(err);
    const reason = (err as { json?: { message?: string } })?.json?.message ?? (err as Error)?.message ?? String(err);
    if (status === 404 && action === 'create container') {
      return new DomainError('internal', `Docker (${this.engineName}): ${action} failed: ${reason} (is the trainer image built?)`, null, { cause: err });
    }
    return new DomainError('service_unavailable', `Docker engine (${this.engineName}): ${action} failed: ${reason}`, null, { cause: err, retryAfterSeconds: 5 });
  }
}

class DockerTimeout extends Error {
  constructor(action: string, ms: number) {
    super(`no answer to ${action} within ${ms} ms`);
    this.name = 'DockerTimeout';
  }
}

/** dockerode's ping takes an abortSignal at run time; its typings only know the no-argument form. */
function pingWithSignal(docker: Docker, abortSignal: AbortSignal | undefined): Promise<unknown> {
  const ping = docker.ping as unknown as (this: Docker, opts: { abortSignal?: AbortSignal }) => Promise<unknown>;
  return ping.call(docker, { abortSignal });
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

export function dockerOptions(engine: EngineAddress): Docker.DockerOptions {
  const url = new URL(engine.url);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  if (url.protocol !== 'tcp:') throw new Error(`unsupported engine URL ${engine.url} (unix:///path or tcp://host:port)`);
  const base = { host: url.hostname, port: Number(url.port || (engine.tls ? 2376 : 2375)) };
  if (!engine.tls) return { ...base, protocol: 'http' };
  // TLS material is read from files on the worker's machine: the database never holds private keys.
  return {
    ...base,
    protocol: 'https',
    ca: fs.readFileSync(engine.tls.ca),
    cert: fs.readFileSync(engine.tls.cert),
    key: fs.readFileSync(engine.tls.key),
  };
}
