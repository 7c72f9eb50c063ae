import { Injectable } from '@nestjs/common';
import { Config } from '../../config/config';
import { PrismaService } from '../../db/prisma.service';
import { DockerRuntime, EngineAddress } from '../runtime/docker-runtime';

export interface JobPlacement {
  host_id: string;
  host_name: string;
  gpu_indices: number[];
  usd_per_gpu_hour: number;
}

/**
 * The Docker engine a job runs on: its GPU host's engine when it was placed on one, else the local engine (CPU
 * models). Clients are cached per host and address, so a host re-registered at another address gets a new one.
 */
@Injectable()
export class DockerEngines {
  private readonly cache = new Map<string, DockerRuntime>();

  constructor(private readonly config: Config, private readonly prisma: PrismaService, private readonly local: DockerRuntime) {}

  async forJob(job: { placement: unknown }): Promise<DockerRuntime> {
    const placement = job.placement as JobPlacement | null;
    if (!placement) return this.local;
    const host = await this.prisma.gpuHost.findUnique({ where: { id: placement.host_id } });
    if (!host) return this.local; // never: a host with allocations cannot be deleted
    return this.forEngine(host.name, { url: host.engineUrl, tls: host.tls as EngineAddress['tls'] });
  }

  forEngine(name: string, engine: EngineAddress): DockerRuntime {
    const key = `${name}|${engine.url}|${JSON.stringify(engine.tls ?? null)}`;
    let runtime = this.cache.get(key);
    if (!runtime) {
      runtime = DockerRuntime.connect(this.config, name, engine);
      this.cache.set(key, runtime);
    }
    return runtime;
  }
}
