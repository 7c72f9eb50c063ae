import { readPlacement } from './placement/job-placement';
import { Checkpoint, FineTuningJob, JobEvent, Prisma } from '../generated/prisma/client';
import { fineTunedModelName } from './fine-tuned-model-name';
import { openaiHyperparameters, readHyperparameters } from './hyperparameters';

const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

/** OpenAI's fine_tuning.job object, plus loraplane's `lora` and `adapter` fields. */
export function toJobObject(job: FineTuningJob) {
  const hp = readHyperparameters(job);
  const openaiHp = openaiHyperparameters(hp);
  const result = job.resultFiles as { key_prefix: string; files: { name: string; bytes: number; sha256: string }[] } | null;
  return {
    id: job.id,
    object: 'fine_tuning.job' as const,
    created_at: unix(job.createdAt)!,
    error: job.error ?? null,
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

/** OpenAI's fine_tuning.job.checkpoint; fine_tuned_model_checkpoint is the job's model name plus the step. */
export function toCheckpointObject(c: Checkpoint, job: Pick<FineTuningJob, 'id' | 'model' | 'suffix'>, projectSlug: string) {
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
    files: c.files,
  };
}

export function toEventObject(e: JobEvent) {
  return {
    id: e.id,
    object: 'fine_tuning.job.event' as const,
    created_at: unix(e.createdAt)!,
    level: e.level,
    message: e.message,
    type: e.type,
    data: e.data ?? null,
  };
}
