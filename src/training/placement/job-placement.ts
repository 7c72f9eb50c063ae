import { z } from 'zod';
import { assertExhaustive } from '../../common/assert-exhaustive';

/** GPUs allocated on a registered Docker GPU host (placement.service). */
export const dockerPlacementSchema = z.object({
  runtime: z.literal('docker'),
  host_id: z.string(),
  host_name: z.string(),
  gpu_indices: z.array(z.number().int().min(0)),
  usd_per_gpu_hour: z.number().min(0),
});
export type DockerPlacement = z.infer<typeof dockerPlacementSchema>;

/** Submitted to a registered Kubernetes cluster, whose scheduler gives the pod its GPUs. */
export const kubernetesPlacementSchema = z.object({
  runtime: z.literal('kubernetes'),
  cluster_id: z.string(),
  cluster_name: z.string(),
  namespace: z.string(),
  gpus: z.number().int().min(0),
  usd_per_gpu_hour: z.number().min(0),
});
export type KubernetesPlacement = z.infer<typeof kubernetesPlacementSchema>;

/**
 * Where a job was placed, by runtime. Stored in FineTuningJob.placement and parsed on every read. Rows written
 * before the runtime field existed are Docker placements.
 */
export const jobPlacementSchema = z.preprocess(
  (v) => (v && typeof v === 'object' && !('runtime' in v) ? { ...v, runtime: 'docker' } : v),
  z.discriminatedUnion('runtime', [dockerPlacementSchema, kubernetesPlacementSchema]),
);
export type JobPlacement = z.infer<typeof jobPlacementSchema>;

/** The stored placement of a job, checked; null when the job holds none. */
export function readPlacement(stored: unknown): JobPlacement | null {
  if (stored === null || stored === undefined) return null;
  return jobPlacementSchema.parse(stored);
}

/** How many GPUs a placement holds and what one costs an hour (what the actual cost is computed from). */
export function placementGpus(placement: JobPlacement): { count: number; usdPerGpuHour: number } {
  switch (placement.runtime) {
    case 'docker':
      return { count: placement.gpu_indices.length, usdPerGpuHour: placement.usd_per_gpu_hour };
    case 'kubernetes':
      return { count: placement.gpus, usdPerGpuHour: placement.usd_per_gpu_hour };
    default:
      return assertExhaustive(placement, 'placement runtime');
  }
}
