import { Injectable } from '@nestjs/common';
import { newId } from '../../common/ids';
import { PrismaService } from '../../db/prisma.service';
import { FineTuningJob, Prisma } from '../../generated/prisma/client';
import { transitionIn } from '../job-state';
import { BaseModel, ModelCatalog } from '../model-catalog';
import { JobPlacement } from './job-placement';
import { fairOrder } from './fair-order';
import { GpuSpec } from './gpu-hosts.service';
import { KubernetesPlacementService } from './kubernetes-placement';

export type PlacementResult = { placed: FineTuningJob; placement: JobPlacement } | { waiting: string };

interface HostFree {
  id: string;
  name: string;
  usdPerGpuHour: number;
  /** Every GPU of the host that is big enough for the model in question is filtered later. */
  gpus: GpuSpec[];
  free: Set<number>;
}

/**
 * Places GPU jobs on registered hosts. One transaction locks every enabled host row, so placements are serialised
 * (two workers cannot both see a GPU as free); the unique (host, gpu) index on GpuAllocation is the last guard.
 *
 * Order: priority, then fair across projects (fairOrder), then FIFO. Queued jobs ahead of this one are placed first in a dry run; if one of them fits
 * nowhere now but could fit once GPUs free up, this job waits behind it, so a big job is never starved by a
 * stream of small ones. A job ahead that no registered host could ever hold does not block anyone.
 */
@Injectable()
export class PlacementService {
  constructor(private readonly prisma: PrismaService, private readonly catalog: ModelCatalog, private readonly kubernetes: KubernetesPlacementService) {}

  /** A model that a registered Kubernetes cluster runs goes there; every other GPU model to the Docker GPU hosts. */
  async place(job: Pick<FineTuningJob, 'id'>, attempt: number, model: BaseModel): Promise<PlacementResult> {
    return (await this.kubernetes.place(job, attempt, model)) ?? this.placeOnHosts(job, attempt, model);
  }

  private placeOnHosts(job: Pick<FineTuningJob, 'id'>, attempt: number, model: BaseModel): Promise<PlacementResult> {
    return this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "GpuHost" WHERE enabled ORDER BY id FOR UPDATE`;
      const me = await tx.fineTuningJob.findUnique({ where: { id: job.id } });
      if (!me || me.status !== 'queued') return { waiting: `the job is ${me?.status ?? 'gone'}, not queued` };
      const rows = await tx.gpuHost.findMany({ where: { enabled: true }, include: { allocations: true }, orderBy: { id: 'asc' } });
      const hosts: HostFree[] = rows.map((h) => {
        const gpus = h.gpus as unknown as GpuSpec[];
        const held = new Set(h.allocations.map((a) => a.gpuIndex));
        return { id: h.id, name: h.name, usdPerGpuHour: h.usdPerGpuHour, gpus, free: new Set(gpus.map((g) => g.index).filter((i) => !held.has(i))) };
      });
      if (!hosts.length) return { waiting: `${need(model)}: no GPU host is registered` };

      const queued = await tx.fineTuningJob.findMany({ where: { status: 'queued' }, select: { id: true, projectId: true, model: true, priority: true, createdAt: true } });
      const running = await tx.fineTuningJob.groupBy({ by: ['projectId'], where: { status: 'running' }, _count: { _all: true } });
      const order = fairOrder(queued, new Map(running.map((r) => [r.projectId, r._count._all])));
      const ahead = order.slice(0, Math.max(0, order.findIndex((j) => j.id === me.id)));
      for (const other of ahead) {
        const otherModel = this.catalog.find(other.model);
        if (!otherModel || otherModel.gpus.count === 0) continue;
        const pick = choose(hosts, otherModel);
        if (pick) {
          pick.indices.forEach((i) => pick.host.free.delete(i)); // reserved for the job ahead
        } else if (couldEverFit(hosts, otherModel)) {
          return { waiting: `${need(model)}: queued behind ${other.id} (priority ${other.priority}), which waits for GPUs too` };
        }
      }

      const pick = choose(hosts, model);
      if (!pick) {
        if (!couldEverFit(hosts, model)) return { waiting: `${need(model)}: no registered host has that many such GPUs (${inventory(hosts, model)})` };
        return { waiting: `${need(model)}: all are in use (${inventory(hosts, model)})` };
      }
      const placement: JobPlacement = { runtime: 'docker', host_id: pick.host.id, host_name: pick.host.name, gpu_indices: pick.indices, usd_per_gpu_hour: pick.host.usdPerGpuHour };
      const placed = await transitionIn(
        tx,
        me.id,
        ['queued'],
        'running',
        { message: `Placed on ${pick.host.name}, GPU(s) ${pick.indices.join(', ')}; starting training container (attempt ${attempt}) with ${model.trainerImage}` },
        { attempt, startedAt: new Date(), placement: placement as unknown as Prisma.InputJsonValue },
      );
      if (!placed) return { waiting: 'the job left the queue meanwhile' };
      await tx.gpuAllocation.createMany({
        data: pick.indices.map((gpuIndex) => ({ id: newId.allocation(), hostId: pick.host.id, gpuIndex, jobId: me.id, attempt })),
      });
      return { placed, placement };
    });
  }
}

const need = (m: BaseModel) => `${m.id} needs ${m.gpus.count} GPU(s) with at least ${m.gpus.minMemoryGb} GB each`;

function fitting(host: HostFree, model: BaseModel): GpuSpec[] {
  return host.gpus.filter((g) => g.memory_gb >= model.gpus.minMemoryGb);
}

/** Best fit: the host with the fewest suitable free GPUs that still holds the job, lowest indices first. */
function choose(hosts: HostFree[], model: BaseModel): { host: HostFree; indices: number[] } | null {
  let best: { host: HostFree; indices: number[]; spare: number } | null = null;
  for (const host of hosts) {
    const free = fitting(host, model).map((g) => g.index).filter((i) => host.free.has(i)).sort((a, b) => a - b);
    if (free.length < model.gpus.count) continue;
    const spare = free.length - model.gpus.count;
    if (!best || spare < best.spare) best = { host, indices: free.slice(0, model.gpus.count), spare };
  }
  return best && { host: best.host, indices: best.indices };
}

function couldEverFit(hosts: HostFree[], model: BaseModel): boolean {
  return hosts.some((h) => fitting(h, model).length >= model.gpus.count);
}

function inventory(hosts: HostFree[], model: BaseModel): string {
  return hosts.map((h) => `${h.name}: ${fitting(h, model).filter((g) => h.free.has(g.index)).length}/${fitting(h, model).length} suitable free`).join('; ');
}
