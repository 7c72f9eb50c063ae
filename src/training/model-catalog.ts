import { Injectable } from '@nestjs/common';
import fs from 'node:fs';
import { z } from 'zod';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';

/** The limits every model shares live beside the trainer contract, which is compiled on its own (contract:schema). */
import { HYPERPARAMETER_LIMITS } from './contract/hyperparameter-limits';

export { HYPERPARAMETER_LIMITS };

export interface LoraLimits {
  maxRank: number;
  /** Modules a LoRA may target on this model (PEFT names). */
  targetModules: string[];
  defaultTargets: string[];
}

export interface BaseModel {
  id: string;
  description: string;
  /** True for the tiny reference model: never presented as GPT-OSS, never in a quality claim. */
  development: boolean;
  trainerImage: string;
  /** Overrides the image's command (a catalog file can point a model at another entry point of the same image). */
  command?: string[];
  /** GPUs a job needs; zero runs on CPU. */
  gpus: { count: number; minMemoryGb: number };
  /** Container limits for the trainer. */
  resources: { memoryMb: number; cpus: number; pids: number; scratchMb: number };
  /** Where the trainer finds base weights: built into the image, a host model cache, or a hub id. */
  weights: { source: 'builtin' | 'host-cache' | 'hub'; ref: string };
  contextLength: number;
  /** The longest answer the model trains on, in its tokens, when it has such a limit (tiny-lora: 64 bytes). */
  maxAnswerTokens?: number;
  lora: LoraLimits;
  /** Base learning rate; OpenAI's learning_rate_multiplier scales it. */
  baseLearningRate: number;
  defaultBatchSize: number;
  /**
   * DPO's default `rpo_alpha` (the preferred output's NLL weight, TRL's rpo_alpha). 0 = the pure DPO loss. tiny-lora's
   * base is seeded noise with no prior to keep answers well-formed, and pure DPO from it displaces likelihood into
   * garbage bytes (held-out greedy match 0-4 % at beta 0.1), so its default anchors with 1.
   */
  defaultRpoAlpha: number;
  /** `n_epochs: "auto"` = clamp(ceil(targetExamples / examples), min, max): small sets get more passes. */
  autoEpochs: { targetExamples: number; min: number; max: number };
  createdAt: number;
  /** Trained tokens per second per GPU (per CPU for CPU models): the cost estimate's throughput. */
  tokensPerSecondPerGpu: number;
  /** $/hour of the hardware a CPU model uses (GPU models are priced by their host's $/GPU-hour). */
  usdPerCpuHour: number;
}

const GPT_OSS_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'mlp.experts.gate_up_proj', 'mlp.experts.down_proj'];

/**
 * The base models jobs can fine-tune. tiny-lora is the development model that runs on CPU everywhere
 * (jobs/tiny-lora); the GPT-OSS entries follow shared/reference/gpt-oss-lora.md.
 */
@Injectable()
export class ModelCatalog {
  private readonly models: BaseModel[];

  constructor(config: Config) {
    const env = config.env;
    this.models = [
      {
        id: 'tiny-lora',
        description: 'Development model: a byte-level language model over hashed features with a LoRA-able output layer. CPU only; not GPT-OSS.',
        development: true,
        trainerImage: env.TINY_LORA_IMAGE,
        gpus: { count: 0, minMemoryGb: 0 },
        resources: { memoryMb: 512, cpus: 1, pids: 64, scratchMb: 64 },
        weights: { source: 'builtin', ref: 'tiny-lora-base-v2' },
        contextLength: 4096,
        maxAnswerTokens: 64,
        lora: { maxRank: 64, targetModules: ['lm_head'], defaultTargets: ['lm_head'] },
        baseLearningRate: 0.05,
        defaultBatchSize: 8,
        defaultRpoAlpha: 1,
        autoEpochs: { targetExamples: 2000, min: 3, max: 50 },
        createdAt: 1767225600,
        tokensPerSecondPerGpu: 200_000,
        usdPerCpuHour: 0,
      },
      {
        id: 'gpt-oss-20b',
        description: 'openai/gpt-oss-20b (21B MoE, MXFP4); LoRA in bf16 on one 80 GB GPU.',
        development: false,
        trainerImage: env.GPT_OSS_IMAGE,
        gpus: { count: 1, minMemoryGb: 80 },
        resources: { memoryMb: 96 * 1024, cpus: 8, pids: 4096, scratchMb: 64 * 1024 },
        weights: { source: 'hub', ref: 'openai/gpt-oss-20b' },
        contextLength: 131072,
        lora: { maxRank: 64, targetModules: GPT_OSS_TARGETS, defaultTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
        baseLearningRate: 2e-4,
        defaultBatchSize: 4,
        defaultRpoAlpha: 0,
        autoEpochs: { targetExamples: 1000, min: 1, max: 3 },
        createdAt: 1754352000,
        // LoRA on one H100 with bf16 activations, sequence packing: a conservative planning figure.
        tokensPerSecondPerGpu: 3_000,
        usdPerCpuHour: 0,
      },
      {
        id: 'gpt-oss-120b',
        description: 'openai/gpt-oss-120b (117B MoE, MXFP4); LoRA needs a multi-GPU host (4+ x 80 GB).',
        development: false,
        trainerImage: env.GPT_OSS_IMAGE,
        gpus: { count: 4, minMemoryGb: 80 },
        resources: { memoryMb: 480 * 1024, cpus: 32, pids: 8192, scratchMb: 256 * 1024 },
        weights: { source: 'hub', ref: 'openai/gpt-oss-120b' },
        contextLength: 131072,
        lora: { maxRank: 64, targetModules: GPT_OSS_TARGETS, defaultTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
        baseLearningRate: 2e-4,
        defaultBatchSize: 4,
        defaultRpoAlpha: 0,
        autoEpochs: { targetExamples: 1000, min: 1, max: 3 },
        createdAt: 1754352000,
        tokensPerSecondPerGpu: 800,
        usdPerCpuHour: 0,
      },
    ];
    if (env.MODEL_CATALOG_FILE) this.models = mergeCatalogFile(this.models, env.MODEL_CATALOG_FILE);
  }

  all(): BaseModel[] {
    return this.models;
  }

  find(id: string): BaseModel | undefined {
    return this.models.find((m) => m.id === id);
  }

  get(id: string, param = 'model'): BaseModel {
    const model = this.find(id);
    if (!model) {
      throw new DomainError('unknown_model', `Model '${id}' cannot be fine-tuned here; available: ${this.models.map((m) => m.id).join(', ')}`, param);
    }
    return model;
  }
}

/**
 * A catalog file entry: a whole model, or `extends` an existing id and overrides some fields. Nested objects
 * (gpus, resources, weights, lora, autoEpochs) replace the base's object field by field.
 */
const catalogEntry = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lower-case letters, digits, ., _ and -'),
    extends: z.string().optional(),
    description: z.string().optional(),
    development: z.boolean().optional(),
    trainerImage: z.string().min(1).optional(),
    command: z.array(z.string()).min(1).optional(),
    gpus: z.object({ count: z.number().int().min(0).max(64), minMemoryGb: z.number().min(0) }).partial().optional(),
    resources: z.object({ memoryMb: z.number().int().min(16), cpus: z.number().positive(), pids: z.number().int().min(8), scratchMb: z.number().int().min(1) }).partial().optional(),
    weights: z.object({ source: z.enum(['builtin', 'host-cache', 'hub']), ref: z.string().min(1) }).optional(),
    contextLength: z.number().int().positive().optional(),
    lora: z.object({ maxRank: z.number().int().min(1), targetModules: z.array(z.string()).min(1), defaultTargets: z.array(z.string()).min(1) }).partial().optional(),
    baseLearningRate: z.number().positive().optional(),
    defaultBatchSize: z.number().int().min(1).optional(),
    defaultRpoAlpha: z.number().min(0).max(HYPERPARAMETER_LIMITS.rpoAlpha.max).optional(),
    autoEpochs: z.object({ targetExamples: z.number().int().min(1), min: z.number().int().min(1), max: z.number().int().min(1) }).partial().optional(),
    tokensPerSecondPerGpu: z.number().positive().optional(),
    usdPerCpuHour: z.number().min(0).optional(),
  })
  .strict();

export function mergeCatalogFile(models: BaseModel[], file: string): BaseModel[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`MODEL_CATALOG_FILE ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = z.array(catalogEntry).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`MODEL_CATALOG_FILE ${file}: [${issue.path.join('.')}] ${issue.message}`);
  }
  const out = [...models];
  for (const entry of parsed.data) {
    const baseId = entry.extends ?? entry.id;
    const base = out.find((m) => m.id === baseId);
    if (!base && entry.extends) throw new Error(`MODEL_CATALOG_FILE ${file}: ${entry.id} extends unknown model '${entry.extends}'`);
    const { extends: _e, ...fields } = entry;
    const merged = {
      ...(base ?? {}),
      ...fields,
      gpus: { ...base?.gpus, ...fields.gpus },
      resources: { ...base?.resources, ...fields.resources },
      lora: { ...base?.lora, ...fields.lora },
      autoEpochs: { ...base?.autoEpochs, ...fields.autoEpochs },
      weights: fields.weights ?? base?.weights,
    } as BaseModel;
    const missing = ['description', 'trainerImage', 'weights', 'contextLength', 'baseLearningRate', 'defaultBatchSize', 'tokensPerSecondPerGpu'].filter(
      (k) => merged[k as keyof BaseModel] === undefined,
    );
    if (missing.length) throw new Error(`MODEL_CATALOG_FILE ${file}: ${entry.id} lacks ${missing.join(', ')} (or name a model in "extends")`);
    merged.development ??= false;
    merged.usdPerCpuHour ??= 0;
    merged.defaultRpoAlpha ??= 0;
    merged.createdAt ??= Math.floor(Date.now() / 1000);
    const at = out.findIndex((m) => m.id === entry.id);
    if (at >= 0) out[at] = merged;
    else out.push(merged);
  }
  return out;
}
