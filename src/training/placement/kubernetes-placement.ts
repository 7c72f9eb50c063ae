import { Injectable } from '@nestjs/common';
import { PrismaService } from '../../db/prisma.service';
import { FineTuningJob, Prisma } from '../../generated/prisma/client';
import { transitionIn } from '../job-state';
import { BaseModel } from '../model-catalog';
import { TrainingRuntimes } from '../runtime/training-runtimes';
import { KubernetesPlacement as Placement } from './job-placement';
import type { PlacementResult } from './placement.service';

/**
 * Jobs of a model that a registered cluster lists go to that cluster, whose scheduler (and Kueue, if used) gives
 * the pod its GPUs: loraplane allocates nothing there. The attempt's Job is submitted while the job is still
 * `queued`, so it waits in the cluster's own queue; the job becomes `running` once its pod is scheduled, and
 * until then the wait says what the scheduler said. The submission is recorded on the job (placement and
 * workloadId), so a cancel while queued deletes the Job.
 */
@Injectable()
export class KubernetesPlacementService {
  constructor(private readonly prisma: PrismaService, private readonly runtimes: TrainingRuntimes) {}

  /** null when no enabled cluster runs this model (the job goes to the Docker GPU hosts). */
  async place(job: Pick<FineTuningJob, 'id'>, attempt: number, model: BaseModel): Promise<PlacementResult | null> {
    const cluster = await this.prisma.kubernetesCluster.findFirst({ where: { enabled: true, models: { has: model.id } }, orderBy: { name: 'asc' } });
    if (!cluster) return null;
    const me = await this.prisma.fineTuningJob.findUnique({ where: { id: job.id } });
    if (!me || me.status !== 'queued') return { waiting: `the job is ${me?.status ?? 'gone'}, not queued` };
    const runtime = this.runtimes.kubernetes(cluster);
    const workloadId = await runtime.submit({
      jobId: me.id,
      projectId: me.projectId,
      attempt,
      model: model.id,
      image: model.trainerImage,
      command: model.command,
      env: {}, // the spec (presigned URLs) comes at launch, in the attempt's Secret
      resources: model.resources,
      gpuCount: model.gpus.count,
    });
    const placement: Placement = { runtime: 'kubernetes', cluster_id: cluster.id, cluster_name: cluster.name, namespace: cluster.namespace, gpus: model.gpus.count, usd_per_gpu_hour: cluster.usdPerGpuHour };
    const json = placement as unknown as Prisma.InputJsonValue;
    if (me.workloadId !== workloadId) await this.prisma.fineTuningJob.updateMany({ where: { id: me.id, status: 'queued' }, data: { workloadId, placement: json } });

    const waiting = await runtime.waitingFor(me.id, attempt, model.gpus.count);
    if (waiting) return { waiting };
    const placed = await this.prisma.$transaction((tx) =>
      transitionIn(
        tx,
        me.id,
        ['queued'],
        'running',
        { message: `Scheduled on Kubernetes cluster ${cluster.name} (namespace ${cluster.namespace}); starting training Job ${workloadId} (attempt ${attempt}) with ${model.trainerImage}` },
        { attempt, startedAt: new Date(), placement: json, workloadId },
      ),
    );
    if (!placed) return { waiting: 'the job left the queue meanwhile' };
    return { placed, placement };
  }
}
