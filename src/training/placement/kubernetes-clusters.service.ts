import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { DomainError, notFound } from '../../common/domain-error';
import { newId } from '../../common/ids';
import { PrismaService } from '../../db/prisma.service';
import { KubernetesCluster, Prisma } from '../../generated/prisma/client';
import { ModelCatalog } from '../model-catalog';

const dnsLabel = z.string().min(1).max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a lowercase RFC 1123 label (a-z, 0-9, -)');
const labelKey = z.string().min(1).max(253).regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'a Kubernetes label key');
const labelValue = z.string().max(63).regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, 'a Kubernetes label value');

/** Kubernetes' Toleration, field by field (the API's camelCase: the object goes into the pod spec as it is). */
const toleration = z.strictObject({
  key: z.string().max(253).optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().max(63).optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

const registerFields = {
  name: z.string().min(1).max(64).regex(/^[a-zA-Z0-9._-]+$/, 'letters, digits, ., _ and - only'),
  /** A kubeconfig on the workers' machines; omitted or null: the worker's in-cluster service account. */
  kubeconfig_path: z.string().startsWith('/', 'an absolute path on the workers').max(1024).nullish(),
  context: z.string().min(1).max(253).nullish(),
  namespace: dnsLabel,
  models: z.array(z.string().min(1)).min(1).max(100),
  node_selector: z.record(labelKey, labelValue).default({}),
  tolerations: z.array(toleration).max(50).default([]),
  priority_class_name: dnsLabel.max(253).nullish(),
  kueue_queue: dnsLabel.nullish(),
  gpu_resource: z.string().regex(/^[a-z0-9.-]+\/[a-z0-9_.-]+$/, 'an extended resource name such as nvidia.com/gpu').default('nvidia.com/gpu'),
  ttl_seconds_after_finished: z.number().int().min(0).max(30 * 24 * 3600).default(3600),
  usd_per_gpu_hour: z.number().min(0).max(10_000).default(0),
  enabled: z.boolean().default(true),
};
export const registerClusterBody = z.strictObject(registerFields).refine((b) => !b.context || b.kubeconfig_path, { message: 'context needs a kubeconfig_path', path: ['context'] });
export type RegisterClusterBody = z.infer<typeof registerClusterBody>;

export const updateClusterBody = z.strictObject({
  models: registerFields.models.optional(),
  node_selector: z.record(labelKey, labelValue).optional(),
  tolerations: z.array(toleration).max(50).optional(),
  priority_class_name: registerFields.priority_class_name,
  kueue_queue: registerFields.kueue_queue,
  ttl_seconds_after_finished: z.number().int().min(0).max(30 * 24 * 3600).optional(),
  usd_per_gpu_hour: z.number().min(0).max(10_000).optional(),
  enabled: z.boolean().optional(),
});
export type UpdateClusterBody = z.infer<typeof updateClusterBody>;

/**
 * The operator's registry of Kubernetes clusters (one namespace each) and the models they run. Not tenant data:
 * admin keys only. Credentials stay on the workers: a kubeconfig path, or the worker pod's service account.
 */
@Injectable()
export class KubernetesClustersService {
  constructor(private readonly prisma: PrismaService, private readonly catalog: ModelCatalog) {}

  async register(body: RegisterClusterBody): Promise<KubernetesCluster> {
    this.checkModels(body.models);
    try {
      return await this.prisma.kubernetesCluster.create({
        data: {
          id: newId.kubernetesCluster(),
          name: body.name,
          kubeconfigPath: body.kubeconfig_path ?? null,
          context: body.context ?? null,
          namespace: body.namespace,
          models: body.models,
          nodeSelector: body.node_selector,
          tolerations: body.tolerations as Prisma.InputJsonValue,
          priorityClassName: body.priority_class_name ?? null,
          kueueQueue: body.kueue_queue ?? null,
          gpuResource: body.gpu_resource,
          ttlSecondsAfterFinished: body.ttl_seconds_after_finished,
          usdPerGpuHour: body.usd_per_gpu_hour,
          enabled: body.enabled,
        },
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'P2002') throw new DomainError('invalid_request', `A Kubernetes cluster named '${body.name}' is already registered`, 'name');
      throw err;
    }
  }

  list(): Promise<KubernetesCluster[]> {
    return this.prisma.kubernetesCluster.findMany({ orderBy: { createdAt: 'asc' } });
  }

  async get(id: string): Promise<KubernetesCluster> {
    const cluster = await this.prisma.kubernetesCluster.findUnique({ where: { id } });
    if (!cluster) throw notFound('Kubernetes cluster', id, 'cluster_id');
    return cluster;
  }

  async update(id: string, body: UpdateClusterBody): Promise<KubernetesCluster> {
    await this.get(id);
    if (body.models) this.checkModels(body.models);
    const data: Prisma.KubernetesClusterUpdateInput = {};
    if (body.models) data.models = body.models;
    if (body.node_selector) data.nodeSelector = body.node_selector;
    if (body.tolerations) data.tolerations = body.tolerations as Prisma.InputJsonValue;
    if (body.priority_class_name !== undefined) data.priorityClassName = body.priority_class_name;
    if (body.kueue_queue !== undefined) data.kueueQueue = body.kueue_queue;
    if (body.ttl_seconds_after_finished !== undefined) data.ttlSecondsAfterFinished = body.ttl_seconds_after_finished;
    if (body.usd_per_gpu_hour !== undefined) data.usdPerGpuHour = body.usd_per_gpu_hour;
    if (body.enabled !== undefined) data.enabled = body.enabled;
    return this.prisma.kubernetesCluster.update({ where: { id }, data });
  }

  /** Refused while an unfinished job was placed there: its workers would no longer find the cluster. */
  async remove(id: string): Promise<void> {
    await this.get(id);
    const open = await this.prisma.fineTuningJob.findFirst({
      where: { status: { in: ['queued', 'running'] }, placement: { path: ['cluster_id'], equals: id } },
      select: { id: true },
    });
    if (open) throw new DomainError('invalid_state', `Kubernetes cluster ${id} runs ${open.id}; disable it and wait for its jobs to end`, 'cluster_id');
    await this.prisma.kubernetesCluster.delete({ where: { id } });
  }

  private checkModels(models: string[]): void {
    models.forEach((m, i) => {
      const model = this.catalog.find(m);
      if (!model) throw new DomainError('invalid_request', `models[${i}]: unknown model '${m}' (see GET /v1/models)`, `models[${i}]`);
      // CPU models train on the workers' local engine; only GPU jobs are placed.
      if (model.gpus.count === 0) throw new DomainError('invalid_request', `models[${i}]: '${m}' is a CPU model and is not placed on clusters`, `models[${i}]`);
    });
  }
}

export const clusterObject = z.object({
  id: z.string(),
  object: z.literal('kubernetes_cluster'),
  name: z.string(),
  kubeconfig_path: z.string().nullable().describe("a kubeconfig on the workers' machines; null: in-cluster"),
  context: z.string().nullable(),
  in_cluster: z.boolean().describe("true: the worker's in-cluster service account"),
  namespace: z.string(),
  models: z.array(z.string()),
  node_selector: z.record(z.string(), z.string()),
  tolerations: z.array(toleration),
  priority_class_name: z.string().nullable(),
  kueue_queue: z.string().nullable(),
  gpu_resource: z.string(),
  ttl_seconds_after_finished: z.number(),
  usd_per_gpu_hour: z.number(),
  enabled: z.boolean(),
  created_at: z.number(),
});

export function toClusterObject(c: KubernetesCluster): z.infer<typeof clusterObject> {
  return {
    id: c.id,
    object: 'kubernetes_cluster',
    name: c.name,
    kubeconfig_path: c.kubeconfigPath,
    context: c.context,
    in_cluster: c.kubeconfigPath === null,
    namespace: c.namespace,
    models: c.models,
    // Written only from the validated register and update bodies.
    node_selector: c.nodeSelector as Record<string, string>,
    tolerations: c.tolerations as z.infer<typeof toleration>[],
    priority_class_name: c.priorityClassName,
    kueue_queue: c.kueueQueue,
    gpu_resource: c.gpuResource,
    ttl_seconds_after_finished: c.ttlSecondsAfterFinished,
    usd_per_gpu_hour: c.usdPerGpuHour,
    enabled: c.enabled,
    created_at: Math.floor(c.createdAt.getTime() / 1000),
  };
}
