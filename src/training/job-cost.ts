import { z } from 'zod';
import { FineTuningJob } from '../generated/prisma/client';
import { resolvedHyperparametersSchema } from './hyperparameters';
import { BaseModel } from './model-catalog';
import { placementGpus, readPlacement } from './placement/job-placement';

/** Characters per token when a dataset has no token count: a common rule of thumb for English BPE tokenizers. */
const BYTES_PER_TOKEN = 4;

export const costEstimateObject = z.object({
  dataset_tokens: z.number().describe('tokens in one pass over the training file'),
  tokens_source: z.enum(['dataset_stats', 'bytes_estimate']).describe("where dataset_tokens came from: the dataset's own count, or its size in bytes / 4"),
  n_epochs: z.number(),
  trained_tokens: z.number(),
  gpus: z.number(),
  tokens_per_second_per_gpu: z.number(),
  hours: z.number().describe('hours the job should run'),
  gpu_hours: z.number(),
  usd_per_gpu_hour: z.number().nullable(),
  usd: z.number().nullable().describe('null when no registered host can run the model (the price is the host\'s)'),
});
export type CostEstimate = z.infer<typeof costEstimateObject>;

/** A create body checked and priced, creating nothing: the estimate route's answer and each job of a migration plan. */
export const jobEstimateObject = costEstimateObject.extend({ method: z.enum(['supervised', 'dpo']), hyperparameters: resolvedHyperparametersSchema });

export interface ActualCost {
  seconds: number;
  gpus: number;
  gpu_hours: number;
  usd_per_gpu_hour: number;
  usd: number;
}

const round = (n: number, digits = 6) => Number(n.toFixed(digits));

/**
 * trained tokens (dataset tokens x epochs) / (per-GPU throughput x GPUs) = hours; x GPUs = GPU hours; x the
 * cheapest host that can hold the model ($/GPU-hour) = dollars. CPU models count their CPUs and the catalog's
 * $/CPU-hour instead.
 */
export function estimateCost(
  model: BaseModel,
  dataset: { bytes: bigint | number; stats: unknown },
  nEpochs: number,
  usdPerGpuHour: number | null,
): CostEstimate {
  const stats = dataset.stats as { tokens?: { total?: number } } | null;
  const counted = stats?.tokens?.total;
  const datasetTokens = typeof counted === 'number' && counted > 0 ? counted : Math.ceil(Number(dataset.bytes) / BYTES_PER_TOKEN);
  const trained = datasetTokens * nEpochs;
  const units = model.gpus.count > 0 ? model.gpus.count : model.resources.cpus;
  const hours = trained / (model.tokensPerSecondPerGpu * units) / 3600;
  const price = model.gpus.count > 0 ? usdPerGpuHour : model.usdPerCpuHour;
  return {
    dataset_tokens: datasetTokens,
    tokens_source: typeof counted === 'number' && counted > 0 ? 'dataset_stats' : 'bytes_estimate',
    n_epochs: nEpochs,
    trained_tokens: trained,
    gpus: model.gpus.count,
    tokens_per_second_per_gpu: model.tokensPerSecondPerGpu,
    hours: round(hours),
    gpu_hours: round(hours * model.gpus.count),
    usd_per_gpu_hour: price,
    usd: price === null ? null : round(hours * units * price, 4),
  };
}

/** Wall time x GPUs x the price of the host the job ran on. */
export function actualCost(job: Pick<FineTuningJob, 'startedAt' | 'placement'>, model: BaseModel, finishedAt: Date): ActualCost {
  const placement = readPlacement(job.placement);
  const seconds = job.startedAt ? Math.max(0, (finishedAt.getTime() - job.startedAt.getTime()) / 1000) : 0;
  const held = placement ? placementGpus(placement) : null;
  const gpus = held?.count ?? 0;
  const price = held ? held.usdPerGpuHour : model.usdPerCpuHour;
  const units = placement ? gpus : model.resources.cpus;
  return { seconds: round(seconds, 3), gpus, gpu_hours: round((seconds / 3600) * gpus), usd_per_gpu_hour: price, usd: round((seconds / 3600) * units * price, 4) };
}
