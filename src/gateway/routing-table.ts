import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { SecretBox } from '../common/secret-box';
import { Config } from '../config/config';
import { ChangeFeed } from '../db/change-feed';
import { LiveSnapshot } from '../db/live-snapshot';
import { PrismaService } from '../db/prisma.service';
import { buildSnapshot, emptySnapshot, resolve, Route, RoutingSnapshot } from './routing-snapshot';

/** Tables whose changes can move a name to another replica, pool or provider. */
const ROUTING_TABLES = new Set(['ServingPool', 'Replica', 'Deployment', 'Alias', 'AdapterVersion', 'FineTuningJob', 'ProviderModel', 'Project']);

/**
 * Every project's name-resolution table and the replicas behind each name, in memory (the gateway's hot path never
 * queries Postgres). Reloaded within milliseconds of a committed change (LISTEN/NOTIFY) and every
 * GATEWAY_REFRESH_MS besides. Provider keys are opened here, once per load, and live only in this memory.
 */
@Injectable()
export class RoutingTable implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly snapshot: LiveSnapshot<RoutingSnapshot>;

  constructor(private readonly prisma: PrismaService, private readonly feed: ChangeFeed, private readonly secrets: SecretBox, private readonly config: Config) {
    this.snapshot = new LiveSnapshot('RoutingTable', emptySnapshot(), () => this.load(), ROUTING_TABLES);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.runsApi || this.config.runsGateway) await this.snapshot.start(this.feed, this.config.env.GATEWAY_REFRESH_MS);
  }

  onModuleDestroy(): void {
    this.snapshot.stop();
  }

  resolve(projectId: string, name: string): Route | null {
    return resolve(this.snapshot.value, projectId, name);
  }

  /** Every name the project can call now (listing order: as resolved). */
  routes(projectId: string): Route[] {
    return [...(this.snapshot.value.projects.get(projectId)?.byName.values() ?? [])];
  }

  /** Reload now and wait for it (after a change made in this process, or in tests). */
  refresh(): Promise<void> {
    return this.snapshot.refresh();
  }

  private async load(): Promise<RoutingSnapshot> {
    const [pools, providers] = await Promise.all([
      this.prisma.servingPool.findMany({
        orderBy: { createdAt: 'asc' },
        select: {
          id: true,
          projectId: true,
          name: true,
          baseModel: true,
          servedModelName: true,
          createdAt: true,
          replicas: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { id: true, name: true, vllmUrl: true, status: true, observed: true } },
          deployments: {
            orderBy: { createdAt: 'asc' },
            select: { createdAt: true, version: { select: { id: true, version: true, jobId: true, checkpointId: true, adapter: { select: { name: true } } } } },
          },
          aliases: {
            orderBy: { createdAt: 'asc' },
            select: { id: true, updatedAt: true, adapter: { select: { name: true } }, canaryRequestShare: true, canaryVersionId: true },
          },
        },
      }),
      this.prisma.providerModel.findMany({ orderBy: { createdAt: 'asc' } }),
    ]);
    const jobIds = [...new Set(pools.flatMap((p) => p.deployments.map((d) => d.version.jobId).filter((id): id is string => id !== null)))];
    const jobs = jobIds.length
      ? await this.prisma.fineTuningJob.findMany({ where: { id: { in: jobIds }, status: 'succeeded', modelDeletedAt: null, fineTunedModel: { not: null } }, select: { id: true, fineTunedModel: true } })
      : [];
    // A canary by requests names a version that is deployed on the pool: its number is in the deployments.
    const withCanaries = pools.map((p) => {
      const numbers = new Map(p.deployments.map((d) => [d.version.id, d.version.version]));
      return {
        ...p,
        aliases: p.aliases.map((a) => ({
          ...a,
          canaryVersion: a.canaryVersionId && numbers.has(a.canaryVersionId) ? { id: a.canaryVersionId, version: numbers.get(a.canaryVersionId)! } : null,
        })),
      };
    });
    return buildSnapshot(
      withCanaries,
      jobs.map((j) => ({ id: j.id, fineTunedModel: j.fineTunedModel! })),
      providers.map((p) => ({ ...p, apiKey: p.apiKeySealed ? this.secrets.open(p.apiKeySealed, { purpose: 'provider_model.api_key', id: p.id }) : null })),
    );
  }
}
