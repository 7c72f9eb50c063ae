import { z } from 'zod';
import { DomainError } from '../common/domain-error';
import { BaseModel } from './model-catalog';

const auto = z.literal('auto');
export const hyperparametersInput = z.object({
  batch_size: z.union([auto, z.number().int().min(1).max(256)]).optional(),
  learning_rate_multiplier: z.union([auto, z.number().positive().max(100)]).optional(),
  n_epochs: z.union([auto, z.number().int().min(1).max(50)]).optional(),
  beta: z.union([auto, z.number().positive().max(10)]).optional(),
});
export type HyperparametersInput = z.infer<typeof hyperparametersInput>;

/** loraplane's native extension of the create body: the LoRA itself. */
export const loraInput = z.object({
  r: z.number().int().min(1).max(512).optional(),
  alpha: z.number().positive().max(4096).optional(),
  dropout: z.number().min(0).max(0.9).optional(),
  target_modules: z.array(z.string().min(1)).min(1).optional(),
});
export type LoraInput = z.infer<typeof loraInput>;

export interface ResolvedHyperparameters {
  batch_size: number;
  learning_rate_multiplier: number;
  n_epochs: number;
  beta?: number;
  learning_rate: number;
  lora: { r: number; alpha: number; dropout: number; target_modules: string[] };
}

/**
 * Turns "auto" into numbers with a documented rule (README, "Hyperparameters"):
 * - batch_size: the model's default, but never more than the number of examples;
 * - learning_rate_multiplier: 1 (the model's base learning rate);
 * - n_epochs: enough passes to see about `autoEpochs.targetExamples` examples, clamped per model;
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
  const multiplier = num(input.learning_rate_multiplier) ?? 1;
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
  const dropout = lora.dropout ?? 0;
  if (dropout > 0 && targets.some((t) => t.includes('experts'))) {
    // PEFT's target_parameters (MoE expert weights) do not support dropout.
    throw new DomainError('invalid_request', 'lora.dropout must be 0 when expert weights are targeted', 'lora.dropout');
  }
  return {
    batch_size: batch,
    learning_rate_multiplier: multiplier,
    n_epochs: epochs,
    ...(method === 'dpo' ? { beta: num(input.beta) ?? 0.1 } : {}),
    learning_rate: model.baseLearningRate * multiplier,
    lora: { r, alpha: lora.alpha ?? 2 * r, dropout, target_modules: targets },
  };
}
