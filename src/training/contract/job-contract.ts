import { z } from 'zod';
import { HYPERPARAMETER_LIMITS as L } from './hyperparameter-limits';

/**
 * The control plane <-> trainer contract (jobs/CONTRACT.md is the prose version; keep them in step).
 * The trainer receives a JobSpec in the LORAPLANE_JOB_SPEC environment variable and prints one JSON object per
 * line on stdout for each event. Lines that are not JSON objects with a known `type` are logs.
 */
export const CONTRACT_VERSION = 1;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/** The LoRA settings of a spec; the stored hyperparameter record (hyperparameters.ts) uses the same schema. */
export const loraSettingsSchema = z.object({
  r: z.number().int().min(L.lora.rank.min).max(L.lora.rank.max),
  alpha: z.number().positive().max(L.lora.alphaMax),
  dropout: z.number().min(0).max(L.lora.dropoutMax),
  target_modules: z.array(z.string().min(1)).min(1),
});

export const jobSpecSchema = z.object({
  contract_version: z.literal(CONTRACT_VERSION),
  job_id: z.string(),
  attempt: z.number().int().min(1),
  /** The catalog name of the base model (e.g. tiny-lora, gpt-oss-20b) and where its weights are. */
  model: z.object({ name: z.string(), weights: z.string().optional() }),
  method: z.enum(['supervised', 'dpo']),
  seed: z.number().int(),
  hyperparameters: z.object({
    n_epochs: z.number().int().min(L.nEpochs.min).max(L.nEpochs.max),
    batch_size: z.number().int().min(L.batchSize.min).max(L.batchSize.max),
    learning_rate: z.number().positive(),
    lora: loraSettingsSchema,
    /** DPO's beta (method "dpo" only; the trainer's default is 0.1). Optional, so version-1 specs stay valid. */
    beta: z.number().positive().max(L.beta.max).optional(),
    /** DPO's anchor (method "dpo" only): adds rpo_alpha * NLL(preferred output) / its tokens to the loss; absent = 0. */
    rpo_alpha: z.number().min(0).max(L.rpoAlpha.max).optional(),
  }),
  data: z.object({
    training_file: z.object({ url: z.string().url(), sha256: sha256Hex, bytes: z.number().int().min(0) }),
    validation_file: z.object({ url: z.string().url(), sha256: sha256Hex, bytes: z.number().int().min(0) }).nullable(),
  }),
  /**
   * Upload a checkpoint (under `output.key_prefix` + `checkpoint-<step>/`) every this many optimizer steps. Absent:
   * the trainer checkpoints only when stopped by SIGTERM. Optional, so version-1 trainers and specs stay valid.
   */
  checkpoint_every_steps: z.number().int().min(1).optional(),
  /** Seconds between SIGTERM and SIGKILL; the trainer fits its last checkpoint into them. Absent: 30. */
  stop_grace_seconds: z.number().int().min(1).optional(),
  /**
   * Continue from a checkpoint an earlier attempt uploaded (its `checkpoint` event): every file of it as a presigned
   * GET with size and sha256. The same spec and data must be given, so the resumed run ends where the whole run would.
   */
  resume_from: z
    .object({
      step: z.number().int().min(1),
      files: z.array(z.object({ name: z.string().min(1), url: z.string().url(), sha256: sha256Hex, bytes: z.number().int().min(0) })).min(1),
    })
    .nullable()
    .optional(),
  /**
   * A presigned POST policy limited to `key_prefix`: POST multipart/form-data to `url` with every entry of `fields`,
   * then `key` = key_prefix + relative file name, then the file last.
   */
  output: z.object({
    url: z.string().url(),
    fields: z.record(z.string(), z.string()),
    key_prefix: z.string(),
    max_bytes: z.number().int().positive(),
    expires_at: z.number().int(),
  }),
});
export type JobSpec = z.infer<typeof jobSpecSchema>;

export const artifactFileSchema = z.object({
  name: z.string().min(1),
  bytes: z.number().int().min(0),
  sha256: sha256Hex,
});
export type ArtifactFile = z.infer<typeof artifactFileSchema>;

/** Machine-readable trainer error codes; exit codes in CONTRACT.md map to these. */
export const trainerErrorCodes = [
  'invalid_spec',
  'data_unreachable',
  'invalid_data',
  'upload_failed',
  'out_of_memory',
  'cancelled',
  'internal',
] as const;
export type TrainerErrorCode = (typeof trainerErrorCodes)[number];

export const trainerEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('status'),
    status: z.enum(['starting', 'loading_data', 'training', 'saving', 'uploading', 'completed']),
    message: z.string(),
  }),
  z.object({
    type: z.literal('metrics'),
    step: z.number().int().min(0),
    total_steps: z.number().int().min(1),
    epoch: z.number().min(0),
    train_loss: z.number(),
    learning_rate: z.number().min(0),
    train_mean_token_accuracy: z.number().min(0).max(1).optional(),
    valid_loss: z.number().optional(),
    valid_mean_token_accuracy: z.number().min(0).max(1).optional(),
    tokens_per_second: z.number().min(0).optional(),
  }),
  z.object({
    type: z.literal('checkpoint'),
    step: z.number().int().min(0),
    key_prefix: z.string(),
    files: z.array(artifactFileSchema).min(1),
    metrics: z.record(z.string(), z.number()).optional(),
  }),
  z.object({
    type: z.literal('artifact'),
    kind: z.literal('adapter'),
    key_prefix: z.string(),
    files: z.array(artifactFileSchema).min(1),
    trained_tokens: z.number().int().min(0).optional(),
  }),
  z.object({
    type: z.literal('error'),
    code: z.enum(trainerErrorCodes),
    message: z.string(),
    line: z.number().int().min(1).optional(),
  }),
]);
export type TrainerEvent = z.infer<typeof trainerEventSchema>;

/** Exit codes a trainer uses; anything else (137 = killed, OOM) is judged by the runtime. */
export const TRAINER_EXIT = {
  ok: 0,
  internal: 1,
  invalid_spec: 2,
  invalid_data: 3,
  data_unreachable: 4,
  upload_failed: 5,
  cancelled: 143,
} as const;

export type ParsedLine = { kind: 'event'; event: TrainerEvent } | { kind: 'log'; text: string } | { kind: 'invalid'; text: string; problem: string };

/** Classify one stdout line: a contract event, a malformed event (JSON with a `type` that fails the schema), or a log. */
export function parseTrainerLine(line: string): ParsedLine {
  const text = line.trimEnd();
  if (!text.startsWith('{')) return { kind: 'log', text };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'log', text };
  }
  if (typeof value !== 'object' || value === null || !('type' in value)) return { kind: 'log', text };
  const parsed = trainerEventSchema.safeParse(value);
  if (parsed.success) return { kind: 'event', event: parsed.data };
  const issue = parsed.error.issues[0];
  return { kind: 'invalid', text, problem: `${issue.path.join('.') || 'type'}: ${issue.message}` };
}

/**
 * The contract as JSON Schema files (jobs/schema/), for trainers that are not TypeScript. Generated by
 * `npm run contract:schema`; a unit test fails when the committed files differ from this.
 */
export function contractJsonSchemas(): Record<string, Record<string, unknown>> {
  const withId = (id: string, title: string, schema: z.ZodType) => ({
    $id: `https://loraplane.dev/contract/v${CONTRACT_VERSION}/${id}`,
    title,
    ...z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }),
  });
  return {
    'job-spec.schema.json': withId('job-spec.schema.json', `loraplane trainer contract v${CONTRACT_VERSION}: the job spec (LORAPLANE_JOB_SPEC)`, jobSpecSchema),
    'trainer-event.schema.json': withId('trainer-event.schema.json', `loraplane trainer contract v${CONTRACT_VERSION}: one stdout event line`, trainerEventSchema),
  };
}
