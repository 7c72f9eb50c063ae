import { Injectable, Logger } from '@nestjs/common';
import Docker from 'dockerode';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import readline from 'node:readline';
import { DomainError } from '../../common/domain-error';
import { Config } from '../../config/config';

export const LABEL = {
  managed: 'io.loraplane.managed',
  job: 'io.loraplane.job',
  attempt: 'io.loraplane.attempt',
  project: 'io.loraplane.project',
  model: 'io.loraplane.model',
} as const;

export interface TrainingLaunch {
  jobId: string;
  projectId: string;
  attempt: number;
  model: string;
  image: string;
  /** Overrides the image's command. */
  command?: string[];
  /** Passed to the container at create time; never logged or stored by loraplane. */
  env: Record<string, string>;
  resources: { memoryMb: number; cpus: number; pids: number; scratchMb: number };
  /** Exact GPU device ids to pin (empty on CPU). */
  gpuDeviceIds: string[];
}

/** Where a Docker engine listens: unix:///path, or tcp://host:port with TLS file paths on this machine. */
export interface EngineAddress {
  url: string;
  tls?: { ca: string; cert: string; key: string } | null;
}

export interface ContainerExit {
  exitCode: number;
  oomKilled: boolean;
}

/**
 * Runs training containers on a Docker engine. Containers are found again by label, so a worker that restarts
 * re-attaches instead of starting a second copy. Vendor errors become DomainErrors here.
 */
@Injectable()
export class DockerRuntime {
  private readonly logger = new Logger(DockerRuntime.name);
  private docker: Docker;
  /** Name of the engine in messages ("local", or a GPU host's name). */
  private engineName = 'local';

  constructor(private readonly config: Config) {
    this.docker = new Docker({ socketPath: config.env.DOCKER_SOCKET });
  }

  /** A runtime for another engine (a GPU host). */
  static connect(config: Config, name: string, engine: EngineAddress): DockerRuntime {
    const runtime = new DockerRuntime(config);
    runtime.docker = new Docker(dockerOptions(engine));
    runtime.engineName = name;
    return runtime;
  }

  async ping(): Promise<void> {
    await this.docker.ping({ abortSignal: AbortSignal.timeout(2000) } as never);
  }

  /** The container of this job attempt, if one was created already. */
  async find(jobId: string, attempt: number): Promise<string | null> {
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: [`${LABEL.job}=${jobId}`, `${LABEL.attempt}=${attempt}`] } }),
    );
    return list[0]?.Id ?? null;
  }

  /** Creates and starts the hardened container (idempotent per job attempt). */
  async start(launch: TrainingLaunch): Promise<string> {
    const existing = await this.find(launch.jobId, launch.attempt);
    const id = existing ?? (await this.create(launch));
    await this.ensureStarted(id);
    return id;
  }

  /** Starts a container that never ran: one that already exited is settled by the caller, not restarted. */
  async ensureStarted(id: string): Promise<void> {
    const info = await this.call('inspect container', () => this.docker.getContainer(id).inspect());
    if (info.State.Status === 'created') {
      await this.call('start container', () => this.docker.getContainer(id).start());
    }
  }

  private async create(launch: TrainingLaunch): Promise<string> {
    const { resources } = launch;
    const container = await this.call('create container', () =>
      this.docker.createContainer({
        name: `loraplane-${launch.jobId}-a${launch.attempt}`,
        Image: launch.image,
        Cmd: launch.command,
        Env: Object.entries(launch.env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          [LABEL.managed]: 'true',
          [LABEL.job]: launch.jobId,
          [LABEL.attempt]: String(launch.attempt),
          [LABEL.project]: launch.projectId,
          [LABEL.model]: launch.model,
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
          DeviceRequests: launch.gpuDeviceIds.length
            ? [{ Driver: 'nvidia', DeviceIDs: launch.gpuDeviceIds, Capabilities: [['gpu']] }]
            : undefined,
        },
      }),
    );
    this.logger.log({ jobId: launch.jobId, attempt: launch.attempt, containerId: container.id }, 'created training container');
    return container.id;
  }

  /**
   * Calls `onLine` for every stdout line from the start of the container's output, in order, until it exits.
   * stderr lines go to `onStderr`. Resolves when the log stream ends.
   */
  async follow(
    containerId: string,
    onLine: (line: string, lineNo: number) => Promise<void>,
    onStderr: (line: string) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const container = this.docker.getContainer(containerId);
    const stream = await this.call('follow logs', () => container.logs({ follow: true, stdout: true, stderr: true }));
    const stop = () => (stream as unknown as { destroy(): void }).destroy();
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
    const out = new PassThrough();
    const err = new PassThrough();
    container.modem.demuxStream(stream, out, err);
    stream.on('end', () => { out.end(); err.end(); });
    stream.on('error', () => { out.end(); err.end(); });
    stream.on('close', () => { out.end(); err.end(); });
    readline.createInterface({ input: err }).on('line', onStderr);
    let lineNo = 0;
    for await (const line of readline.createInterface({ input: out, crlfDelay: Infinity })) {
      if (signal?.aborted) break;
      await onLine(line, ++lineNo);
    }
    signal?.removeEventListener('abort', stop);
  }

  /** The container's state now; null when it is gone. */
  async state(containerId: string): Promise<{ running: boolean; exit: ContainerExit } | null> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return { running: Boolean(info.State.Running), exit: { exitCode: info.State.ExitCode, oomKilled: Boolean(info.State.OOMKilled) } };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.translate(err, 'inspect container');
    }
  }

  async wait(containerId: string): Promise<ContainerExit> {
    const container = this.docker.getContainer(containerId);
    const res = await this.call('wait for container', () => container.wait());
    const info = await this.call('inspect container', () => container.inspect());
    return { exitCode: res.StatusCode, oomKilled: Boolean(info.State.OOMKilled) };
  }

  /** SIGTERM, then SIGKILL after the grace period (the contract asks trainers to checkpoint and exit in time). */
  async stop(containerId: string, graceSeconds = 30): Promise<void> {
    try {
      await this.docker.getContainer(containerId).stop({ t: graceSeconds });
    } catch (err) {
      if (statusOf(err) === 304 || statusOf(err) === 404) return; // already stopped or gone
      throw this.translate(err, 'stop container');
    }
  }

  async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
    } catch (err) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return; // gone, or removal already in progress
      throw this.translate(err, 'remove container');
    }
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err, action);
    }
  }

  private translate(err: unknown, action: string): DomainError {
    const status = statusOf(err);
    const reason = (err as { json?: { message?: string } })?.json?.message ?? (err as Error)?.message ?? String(err);
    if (status === 404 && action === 'create container') {
      return new DomainError('internal', `Docker (${this.engineName}): ${action} failed: ${reason} (is the trainer image built?)`, null, { cause: err });
    }
    return new DomainError('service_unavailable', `Docker engine (${this.engineName}): ${action} failed: ${reason}`, null, { cause: err, retryAfterSeconds: 5 });
  }
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
