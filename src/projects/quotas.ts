import { Global, Injectable, Module } from '@nestjs/common';
import { DomainError, ErrorCode } from '../common/domain-error';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Prisma } from '../generated/prisma/client';

type Db = Prisma.TransactionClient | PrismaService;

/** Job states that hold or wait for GPUs: a project's "concurrent GPU jobs". */
const ACTIVE_JOB_STATES = ['validating_files', 'queued', 'running'] as const;

/**
 * Per-project limits that keep one tenant from taking the shared control plane (GPUs, replicas the reconciler
 * polls, targets the eval worker calls, bucket space). Each limit has its own error code, so a client can tell
 * which one it met. Counts that race (two creates at once) are taken under the project's row lock.
 */
@Injectable()
export class Quotas {
  constructor(private readonly prisma: PrismaService, private readonly config: Config) {}

  /** Serialises quota checks of one project: the count and the insert that follows see the same world. */
  async lockProject(tx: Prisma.TransactionClient, projectId: string): Promise<void> {
    await tx.$queryRaw`SELECT id FROM "Project" WHERE id = ${projectId} FOR UPDATE`;
  }

  async assertGpuJobs(projectId: string, gpuModels: string[], db: Db = this.prisma): Promise<void> {
    const used = await db.fineTuningJob.count({ where: { projectId, model: { in: gpuModels }, status: { in: [...ACTIVE_JOB_STATES] } } });
    this.check('quota_gpu_jobs', used + 1, this.config.env.QUOTA_GPU_JOBS, 'GPU fine-tuning jobs at once (validating, queued or running)', 'model');
  }

  async assertPools(projectId: string, db: Db = this.prisma): Promise<void> {
    const used = await db.servingPool.count({ where: { projectId } });
    this.check('quota_pools', used + 1, this.config.env.QUOTA_POOLS, 'serving pools', 'name');
  }

  async assertReplicas(projectId: string, db: Db = this.prisma): Promise<void> {
    const used = await db.replica.count({ where: { projectId } });
    this.check('quota_replicas', used + 1, this.config.env.QUOTA_REPLICAS, 'replicas (all pools together)', 'name');
  }

  async assertEvalTargets(projectId: string, db: Db = this.prisma): Promise<void> {
    const used = await db.evalTarget.count({ where: { projectId, deletedAt: null } });
    this.check('quota_eval_targets', used + 1, this.config.env.QUOTA_EVAL_TARGETS, 'eval targets', 'name');
  }

  /** Dataset bytes kept (deleted ones excluded) plus what pending uploads declared, and `adding` more. */
  async assertStoredBytes(projectId: string, adding: number, param: string, db: Db = this.prisma): Promise<void> {
    const [datasets, uploads] = await Promise.all([
      db.dataset.aggregate({ where: { projectId, deletedAt: null }, _sum: { bytes: true } }),
      db.upload.aggregate({ where: { projectId, status: 'pending' }, _sum: { bytes: true } }),
    ]);
    const used = Number(datasets._sum.bytes ?? 0n) + Number(uploads._sum.bytes ?? 0n);
    const limit = this.config.env.QUOTA_STORED_BYTES;
    if (used + adding > limit) {
      throw new DomainError('quota_stored_bytes', `This project may store ${limit} bytes of files; it holds ${used} and this adds ${adding}. Delete files to make room.`, param, {
        details: { limit, used },
      });
    }
  }

  private check(code: ErrorCode, wouldBe: number, limit: number, what: string, param: string): void {
    if (wouldBe > limit) throw new DomainError(code, `This project may have at most ${limit} ${what}; the limit is reached.`, param, { details: { limit } });
  }
}

@Global()
@Module({ providers: [Quotas], exports: [Quotas] })
export class QuotasModule {}
