import { Injectable } from '@nestjs/common';
import { assertExhaustive } from '../../common/assert-exhaustive';
import { Config } from '../../config/config';
import { PrismaService } from '../../db/prisma.service';
import { readPlacement } from '../placement/job-placement';
import { DockerRuntime, EngineAddress } from './docker-runtime';
import { DomainError } from '../../common/domain-error';
import { KubernetesCluster } from '../../generated/prisma/client';
import { kubernetesTarget, loadKubeConfig } from './kubernetes/kubernetes-cluster-config';
import { KubernetesRuntime } from './kubernetes/kubernetes-runtime';
import { TrainingRuntime } from './training-runtime';

/**
 * Resolves a job's placement to the runtime its workload runs on: a GPU host's Docker engine when placement put it
 * on one, else the default runtime (the local engine, which runs CPU models). A second runtime adds a member to
 * the placement union (job-placement.ts) and a case here; JobRunner does not change. Clients are cached per engine
 * and address, so a host re-registered at another address gets a new one.
 */
@Injectable()
export class TrainingRuntimes {
  private readonly docker = new Map<string, DockerRuntime>();
  private readonly clusters = new Map<string, KubernetesRuntime>();

  constructor(private readonly config: Config, private readonly prisma: PrismaService) {}

  /** The runtime of jobs that hold no placement (CPU models). */
  default(): TrainingRuntime {
    return this.dockerEngine('local', { url: `unix://${this.config.env.DOCKER_SOCKET}` });
  }

  async forJob(job: { placement: unknown }): Promise<TrainingRuntime> {
    const placement = readPlacement(job.placement);
    if (!placement) return this.default();
    switch (placement.runtime) {
      case 'docker': {
        const host = await this.prisma.gpuHost.findUnique({ where: { id: placement.host_id } });
        if (!host) return this.default(); // never: a host with allocations cannot be deleted
        return this.dockerEngine(host.name, { url: host.engineUrl, tls: host.tls as EngineAddress['tls'] });
      }
      case 'kubernetes': {
        const cluster = await this.prisma.kubernetesCluster.findUnique({ where: { id: placement.cluster_id } });
        if (!cluster) throw new DomainError('internal', `the Kubernetes cluster ${placement.cluster_name} of this job is no longer registered`);
        return this.kubernetes(cluster);
      }
      default:
        return assertExhaustive(placement, 'placement runtime');
    }
  }

  /** A runtime per registration, rebuilt when the registration changes (a new kubeconfig path, namespace...). */
  kubernetes(cluster: KubernetesCluster): KubernetesRuntime {
    const key = `${cluster.id}|${cluster.updatedAt.getTime()}`;
    let runtime = this.clusters.get(key);
    if (!runtime) {
      runtime = new KubernetesRuntime(kubernetesTarget(cluster), loadKubeConfig(cluster), {
        timeoutSeconds: this.config.env.TRAINING_TIMEOUT_SECONDS,
        stopGraceSeconds: this.config.env.TRAINING_STOP_GRACE_SECONDS,
        pollMs: this.config.env.KUBERNETES_POLL_MS,
      });
      this.clusters.set(key, runtime);
    }
    return runtime;
  }

  dockerEngine(name: string, engine: EngineAddress): DockerRuntime {
    const key = `${name}|${engine.url}|${JSON.stringify(engine.tls ?? null)}`;
    let runtime = this.docker.get(key);
    if (!runtime) {
      runtime = new DockerRuntime(this.config, name, engine);
      this.docker.set(key, runtime);
    }
    return runtime;
  }
}
