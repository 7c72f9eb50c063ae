import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AdaptersService } from '../adapters/adapters.service';
import { DomainError } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import type { FineTuningJob } from '../generated/prisma/client';
import { JobHooks } from '../training/job-hooks';
import type { NewEvent } from '../training/job-state';
import { servedName } from './served-name';
import { ServingService } from './serving.service';

/** The adapter a job's output is registered under: its suffix when it has one (versions accumulate), else the job. */
export function autoAdapterName(job: Pick<FineTuningJob, 'id' | 'suffix'>): string {
  const fromSuffix = (job.suffix ?? '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63);
  return fromSuffix || `ft-${job.id.replace(/^ftjob-/, '').toLowerCase()}`.slice(0, 63);
}

/**
 * Callable with no extra call: when a job succeeds and its project has pools marked `auto_deploy` for the job's
 * base model, the job's adapter becomes a version and is deployed to each of them, so its `fine_tuned_model`
 * resolves as soon as the replicas load it. A job event says where it went (or why a pool refused it).
 */
@Injectable()
export class AutoDeploy implements OnModuleInit {
  private readonly logger = new Logger(AutoDeploy.name);

  constructor(private readonly prisma: PrismaService, private readonly adapters: AdaptersService, private readonly serving: ServingService, private readonly hooks: JobHooks) {}

  onModuleInit(): void {
    this.hooks.onSucceeded((job, note) => this.jobSucceeded(job, note));
  }

  async jobSucceeded(job: FineTuningJob, note: (event: NewEvent) => Promise<void>): Promise<void> {
    const pools = await this.prisma.servingPool.findMany({ where: { projectId: job.projectId, autoDeploy: true, baseModel: job.model }, orderBy: { createdAt: 'asc' } });
    if (pools.length === 0) return;
    const name = autoAdapterName(job);
    const { version } = await this.adapters.register(job.projectId, name, { jobId: job.id, description: `Fine-tuning job ${job.id}` });
    const served = servedName(name, version.version);
    const deployed: string[] = [];
    for (const pool of pools) {
      try {
        await this.serving.deploy(job.projectId, pool.name, name, version.version);
        deployed.push(pool.name);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        await note({ level: 'warn', message: `Auto-deploy of ${served} to pool '${pool.name}' was refused: ${err.message}` });
      }
    }
    if (deployed.length === 0) return;
    this.logger.log({ jobId: job.id, adapter: served, pools: deployed }, 'auto-deployed a fine-tuned model');
    await note({
      message: `Deployed as ${served} to pool${deployed.length > 1 ? 's' : ''} ${deployed.map((p) => `'${p}'`).join(', ')} (auto_deploy); call it as ${job.fineTunedModel}`,
      data: { adapter: name, version: version.version, served_name: served, pools: deployed, model: job.fineTunedModel },
    });
  }
}
