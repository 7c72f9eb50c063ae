import { z } from 'zod';
import { DomainError } from '../common/domain-error';
import { loraSettingsSchema } from './contract/job-contract';
import { BaseModel, HYPERPARAMETER_LIMITS as L } from './model-catalog';

const auto = z.literal('auto');
const batchSize = z.number().int().min(L.batchSize.min).max(L.batchSize.max);
const nEpochs = z.number().int().min(L.nEpochs.min).max(L.nEpochs.max);
const multiplier = z.number().positive().max(L.learningRateMultiplier.max);
const beta = z.number().positive().max(L.beta.max);
const rpoAlpha = z.number().min(0).max(L.rpoAlpha.max);

export const hyperparametersInput = z.object({
  batch_size: z.union([auto, batchSize]).optional(),
  learning_rate_multiplier: z.union([auto, multiplier]).optional(),
  n_epochs: z.union([auto, nEpochs]).optional(),
  beta: z.union([auto, beta]).optional(),
});
/** method.dpo.hyperparameters: OpenAI's fields plus loraplane's `rpo_alpha` (the preferred output's NLL weight). */
export const dpoHyperparametersInput = hyperparametersInput.extend({ rpo_alpha: z.union([auto, rpoAlpha]).optional() });
export type HyperparametersInput = z.infer<typeof dpoHyperparametersInput>;

/** loraplane's native extension of the create body: the LoRA itself. */
export const loraInput = loraSettingsSchema.partial();
export type LoraInput = z.infer<typeof loraInput>;

/**
 * A job's hyperparameters as resolved at create ("auto" turned into numbers): the one stored record
 * (FineTuningJob.hyperparameters), parsed on every read. The API's view, the trainer spec and the cost estimate all
 * derive from it. `beta` and `rpo_alpha` are present for DPO only.
 */
export const resolvedHyperparametersSchema = z.object({
  method: z.enum(['supervised', 'dpo']),
  batch_size: batchSize,
  learning_rate_multiplier: multiplier,
  n_epochs: nEpochs,
  beta: beta.optional(),
  rpo_alpha: rpoAlpha.optional(),
  learning_rate: z.number().positive(),
  lora: loraSettingsSchema,
});
export type ResolvedHyperparameters = z.infer<typeof resolvedHyperparametersSchema>;

/**
 * The stored record of a job, checked. Rows written before the record carried its method take it from the job's
 * `method` column ({ type }).
 */
export function readHyperparameters(job: { hyperparameters: unknown; method: unknown }): ResolvedHyperparameters {
  const stored = job.hyperparameters as Record<string, unknown>;
  const method = stored?.method ?? (job.method as { type?: unknown } | null)?.type ?? 'supervised';
  return resolvedHyperparametersSchema.parse({ ...stored, method });
}

/** OpenAI's view of the record: the method object with its hyperparameters (no LoRA, no absolute learning rate). */
export function openaiHyperparameters(hp: ResolvedHyperparameters) {
  return {
    batch_size: hp.batch_size,
    learning_rate_multiplier: hp.learning_rate_multiplier,
    n_epochs: hp.n_epochs,
    ...(hp.beta !== undefined ? { beta: hp.beta } : {}),
    ...(hp.rpo_alpha !== undefined ? { rpo_alpha: hp.rpo_alpha } : {}),
  };
}

/**
 * Turns "auto" into numbers with a documented rule (README, "Hyperparameters"):
 * - batch_size: the model's default, but never more than the number of examples;
 * - learning_rate_multiplier: 1 (the model's base learning rate);
 * - n_epochs: enough passes to see about `autoEpochs.targetExamples` examples, clamped per model;
 * - beta (DPO only): 0.1;
 * - rpo_alpha (DPO only): the model's default (0 = pure DPO; tiny-lora 1, see the catalog);
 * - LoRA: r 8, alpha 2r, dropout 0, the model's default targets.
 */
export function resolveHyperparameters(
  model: BaseModel,
  examples: number,
  input: HyperparametersInput,
  lora: LoraInput,
  method: 'supervised' | 'dpo',
): ResolvedHyperparameters {
  const num = <T>(v: T | 'auto' | undefined): T | undefined => (v === 'auto' ? undefined : v);
  const batch = num(input.batch_size) ?? Math.max(1, Math.min(model.defaultBatchSize, examples));
  const { targetExamples, min, max } = model.autoEpochs;
  const epochs = num(input.n_epochs) ?? Math.min(max, Math.max(min, Math.ceil(targetExamples / Math.max(1, examples))));
  const lrMultiplier = num(input.learning_rate_multiplier) ?? 1;
  const r = lora.r ?? 8;
  if (r > model.lora.maxRank) {
    throw new DomainError('invalid_request', `LoRA rank ${r} is over ${model.id}'s limit of ${model.lora.maxRank}`, 'lora.r');
  }
  const targets = lora.target_modules ?? model.lora.defaultTargets;
  const unknown = targets.filter((t) => !model.lora.targetModules.includes(t));
  if (unknown.length > 0) {
    throw new DomainError(
      'invalid_request',
      `LoRA target modules not supported on ${model.id}: ${unknown.join(', ')}; supported: ${model.lora.targetModules.join(', ')}`,
      'lora.target_modules',
    );
  }
  const loraDropout = lora.dropout ?? 0;
  if (loraDropout > 0 && targets.some((t) => t.includes('experts'))) {
    // PEFT's target_parameters (MoE expert weights) do not support dropout.
    throw new DomainError('invalid_request', 'lora.dropout must be 0 when expert weights are targeted', 'lora.dropout');
  }
  return resolvedHyperparametersSchema.parse({
    method,
    batch_size: batch,
    learning_rate_multiplier: lrMultiplier,
    n_epochs: epochs,
    ...(method === 'dpo' ? { beta: num(input.beta) ?? 0.1, rpo_alpha: num(input.rpo_alpha) ?? model.defaultRpoAlpha } : {}),
    learning_rate: model.baseLearningRate * lrMultiplier,
    lora: { r, alpha: lora.alpha ?? 2 * r, dropout: loraDropout, target_modules: targets },
  });
}
