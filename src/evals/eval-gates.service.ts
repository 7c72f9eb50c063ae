import { Injectable } from '@nestjs/common';
import { notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { PrismaService } from '../db/prisma.service';
import { EvalsService } from './evals.service';

/** Pool-wide gates are stored under this adapter name; an adapter's own gate wins over it. */
export const WHOLE_POOL = '*';

export interface SetGate {
  suite: string;
  baselineTarget: string;
  minMargin: number;
}

/** Promotion requirements per alias (pool + adapter) or per pool. */
@Injectable()
export class EvalGatesService {
  constructor(private readonly prisma: PrismaService, private readonly evals: EvalsService) {}

  async set(projectId: string, poolName: string, adapter: string, input: SetGate) {
    const pool = await this.pool(projectId, poolName);
    const suite = await this.evals.getSuite(projectId, input.suite);
    const baseline = await this.evals.getTarget(projectId, input.baselineTarget, 'baseline_target');
    const data = { suiteId: suite.id, baselineTargetId: baseline.id, minMargin: input.minMargin };
    return this.prisma.evalGate.upsert({
      where: { poolId_adapterName: { poolId: pool.id, adapterName: adapter } },
      update: data,
      create: { id: newId.evalGate(), projectId, poolId: pool.id, adapterName: adapter, ...data },
      include: { suite: { select: { name: true } }, pool: { select: { name: true } } },
    });
  }

  async get(projectId: string, poolName: string, adapter: string) {
    const pool = await this.pool(projectId, poolName);
    const gate = await this.prisma.evalGate.findUnique({
      where: { poolId_adapterName: { poolId: pool.id, adapterName: adapter } },
      include: { suite: { select: { name: true } }, pool: { select: { name: true } } },
    });
    if (!gate) throw notFound('promotion gate', adapter === WHOLE_POOL ? poolName : `${poolName}/${adapter}`, 'adapter_name');
    return gate;
  }

  async remove(projectId: string, poolName: string, adapter: string): Promise<void> {
    const gate = await this.get(projectId, poolName, adapter);
    await this.prisma.evalGate.delete({ where: { id: gate.id } });
  }

  async baselineName(projectId: string, targetId: string): Promise<string> {
    return (await this.prisma.evalTarget.findFirst({ where: { id: targetId, projectId }, select: { name: true } }))?.name ?? targetId;
  }

  private async pool(projectId: string, name: string) {
    const pool = await this.prisma.servingPool.findUnique({ where: { projectId_name: { projectId, name } } });
    if (!pool) throw notFound('serving pool', name, 'pool');
    return pool;
  }
}
