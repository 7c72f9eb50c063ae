import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';

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
  /** GPUs a job needs; zero runs on CPU. */
  gpus: { count: number; minMemoryGb: number };
  /** Container limits for the trainer. */
  resources: { memoryMb: number; cpus: number; pids: number; scratchMb: number };
  /** Where the trainer finds base weights: built into the image, a host model cache, or a hub id. */
  weights: { source: 'builtin' | 'host-cache' | 'hub'; ref: string };
  contextLength: number;
  lora: LoraLimits;
  /** Base learning rate; OpenAI's learning_rate_multiplier scales it. */
  baseLearningRate: number;
  defaultBatchSize: number;
  /** `n_epochs: "auto"` = clamp(ceil(targetExamples / examples), min, max): small sets get more passes. */
  autoEpochs: { targetExamples: number; min: number; max: number };
  createdAt: number;
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
        description: 'Development model: hashed bag-of-words classifier with a LoRA-able output layer. CPU only; not GPT-OSS.',
        development: true,
        trainerImage: env.TINY_LORA_IMAGE,
        gpus: { count: 0, minMemoryGb: 0 },
        resources: { memoryMb: 512, cpus: 1, pids: 64, scratchMb: 64 },
        weights: { source: 'builtin', ref: 'tiny-lora-base-v1' },
        contextLength: 4096,
        lora: { maxRank: 64, targetModules: ['lm_head'], defaultTargets: ['lm_head'] },
        baseLearningRate: 0.05,
        defaultBatchSize: 8,
        autoEpochs: { targetExamples: 4000, min: 3, max: 50 },
        createdAt: 1767225600,
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
        autoEpochs: { targetExamples: 1000, min: 1, max: 3 },
        createdAt: 1754352000,
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
        autoEpochs: { targetExamples: 1000, min: 1, max: 3 },
        createdAt: 1754352000,
      },
    ];
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
