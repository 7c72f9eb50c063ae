import { z } from 'zod';
import { readPlacement } from './placement/job-placement';
import { Checkpoint, FineTuningJob, JobEvent, Prisma } from '../generated/prisma/client';
import { artifactFileSchema } from './contract/job-contract';
import { fineTunedModelName } from './fine-tuned-model-name';
import { openaiHyperparameters, readHyperparameters } from './hyperparameters';

const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const record = z.record(z.string(), z.unknown());
const adapterFiles = z.object({ key_prefix: z.string(), files: z.array(z.object({ name: z.string(), bytes: z.number(), sha256: z.string() })) });
/** How a job failed (job-runner.ts writes it; `code` is a JobFailureCode). */
const jobError = z.object({ code: z.string(), message: z.string(), param: z.string().nullable().optional() });

/**
 * The answer of every job route: documented in the OpenAPI document, so the dashboard and the CLI read it through
 * the generated types. JSON columns the clients only show are `unknown` there.
 */
export const jobObject = z.object({
  id: z.string(),
  object: z.literal('fine_tuning.job'),
  created_at: z.number(),
  error: jobError.nullable(),
  fine_tuned_model: z.string().nullable(),
  finished_at: z.number().nullable(),
  // OpenAI's type (unix seconds or null); loraplane makes no finish estimate yet, so it is always null.
  estimated_finish: z.number().nullable(),
  hyperparameters: record,
  method: record,
  model: z.string(),
  organization_id: z.string(),
  result_files: z.array(z.string()),
  seed: z.number().nullable(),
  status: z.enum(['validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled']),
  trained_tokens: z.number().nullable(),
  training_file: z.string(),
  validation_file: z.string().nullable(),
  integrations: z.unknown(),
  metadata: z.unknown(),
  user_provided_suffix: z.string().nullable(),
  lora: record,
  adapter: adapterFiles.nullable(),
  priority: z.number(),
  placement: z.unknown(),
  estimated_cost: z.unknown(),
  cost: z.unknown(),
});
export type JobObject = z.infer<typeof jobObject>;

export const jobEventObject = z.object({
  id: z.string(),
  object: z.literal('fine_tuning.job.event'),
  created_at: z.number(),
  level: z.enum(['info', 'warn', 'error']),
  message: z.string(),
  type: z.enum(['message', 'metrics']),
  data: record.nullable().describe('a metrics event: the trainer\'s metrics line (jobs/CONTRACT.md)'),
});
export type JobEventObject = z.infer<typeof jobEventObject>;

/** OpenAI's fine_tuning.job object, plus loraplane's `lora` and `adapter` fields. */
export function toJobObject(job: FineTuningJob): JobObject {
  const hp = readHyperparameters(job);
  const openaiHp = openaiHyperparameters(hp);
  const result = job.resultFiles === null ? null : adapterFiles.parse(job.resultFiles);
  return {
    id: job.id,
    object: 'fine_tuning.job' as const,
    created_at: unix(job.createdAt)!,
    error: job.error === null ? null : jobError.parse(job.error),
    fine_tuned_model: job.fineTunedModel,
    finished_at: unix(job.finishedAt),
    estimated_finish: null,
    hyperparameters: openaiHp,
    method: { type: hp.method, [hp.method]: { hyperparameters: openaiHp } },
    model: job.model,
    organization_id: job.projectId,
    result_files: [],
    seed: job.seed,
    status: job.status,
    trained_tokens: job.trainedTokens,
    training_file: job.trainingFileId,
    validation_file: job.validationFileId,
    integrations: job.integrations ?? [],
    metadata: job.metadata ?? null,
    user_provided_suffix: job.suffix,
    lora: hp.lora,
    adapter: result ? { key_prefix: result.key_prefix, files: result.files } : null,
    // loraplane extensions
    priority: job.priority,
    placement: readPlacement(job.placement),
    estimated_cost: job.costEstimate ?? null,
    cost: job.costActual ?? null,
  };
}

/** The `data` of a job's webhook events: the public fields that say how it ended. */
export function toJobWebhookData(job: FineTuningJob): Prisma.InputJsonObject {
  return {
    id: job.id,
    object: 'fine_tuning.job',
    status: job.status,
    model: job.model,
    fine_tuned_model: job.fineTunedModel,
    error: (job.error ?? null) as Prisma.InputJsonValue | null,
    finished_at: unix(job.finishedAt),
  };
}

export const checkpointObject = z.object({
  id: z.string(),
  object: z.literal('fine_tuning.job.checkpoint'),
  created_at: z.number(),
  fine_tuned_model_checkpoint: z.string(),
  fine_tuning_job_id: z.string(),
  step_number: z.number(),
  metrics: z.record(z.string(), z.number()),
  attempt: z.number(),
  key_prefix: z.string().describe("where the checkpoint's adapter files are"),
  files: z.array(artifactFileSchema),
});

/** OpenAI's fine_tuning.job.checkpoint; fine_tuned_model_checkpoint is the job's model name plus the step. */
export function toCheckpointObject(c: Checkpoint, job: Pick<FineTuningJob, 'id' | 'model' | 'suffix'>, projectSlug: string): z.infer<typeof checkpointObject> {
  return {
    id: c.id,
    object: 'fine_tuning.job.checkpoint' as const,
    created_at: unix(c.createdAt)!,
    fine_tuned_model_checkpoint: `${fineTunedModelName(job.model, projectSlug, job.suffix, job.id)}:ckpt-step-${c.step}`,
    fine_tuning_job_id: c.jobId,
    step_number: c.step,
    metrics: { step: c.step, ...((c.metrics as Record<string, number> | null) ?? {}) },
    // loraplane extension: where the checkpoint's adapter files are.
    attempt: c.attempt,
    key_prefix: c.keyPrefix,
    // Both written whole from the trainer's checked checkpoint line (jobs/CONTRACT.md).
    files: c.files as z.infer<typeof artifactFileSchema>[],
  };
}

export function toEventObject(e: JobEvent): JobEventObject {
  return {
    id: e.id,
    object: 'fine_tuning.job.event' as const,
    created_at: unix(e.createdAt)!,
    level: e.level,
    message: e.message,
    type: e.type,
    data: isRecord(e.data) ? e.data : null,
  };
}
