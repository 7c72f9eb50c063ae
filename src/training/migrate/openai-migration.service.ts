import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { DomainError } from '../../common/domain-error';
import { Config } from '../../config/config';
import { DatasetsService } from '../../datasets/datasets.service';
import { Dataset } from '../../generated/prisma/client';
import { OpenAIHttpClient } from '../../serving/openai-http.client';
import { jobEstimateObject } from '../job-cost';
import { createJobBody, CreateJobBody, JobsService } from '../jobs.service';
import { OpenAIFineTuningClient, OpenAIJob } from './openai-fine-tuning-client';

export interface MigrationRequest {
  apiKey: string;
  /** The base the jobs are planned on. */
  baseModel: string;
  /** OpenAI job ids; unset: every succeeded job of the account. */
  jobs?: string[];
}

const fileCopy = z.object({ openai_file: z.string(), filename: z.string(), file_id: z.string().describe('the dataset it became here'), status: z.enum(['ready', 'invalid']) });
type FileCopy = z.infer<typeof fileCopy>;

export const plannedJob = z.object({
  openai_job: z.object({ id: z.string(), model: z.string(), status: z.string(), fine_tuned_model: z.string().nullable() }),
  files: z.object({ training: fileCopy, validation: fileCopy.nullable() }),
  create: createJobBody.nullable().describe('the body of POST /v1/fine_tuning/jobs that recreates it here; null when a file is invalid'),
  estimate: jobEstimateObject.nullable(),
  error: z.object({ message: z.string(), param: z.string().nullable() }).nullable(),
});
export type PlannedJob = z.infer<typeof plannedJob>;

/** The dry run's answer (POST /v1/migrations/openai/plan). */
export const migrationPlanObject = z.object({ object: z.literal('migration.openai.plan'), base_model: z.string(), jobs: z.array(plannedJob) });

/**
 * Migration from OpenAI fine-tuning, as a dry run: the account's jobs are listed, their training and validation files
 * copied through OpenAI's Files API into loraplane datasets (streamed through the same validating ingest as any
 * upload; identical content is the same dataset), and for each job the create body of an equivalent job on
 * `baseModel` (same method, hyperparameters, suffix, seed, metadata) with its cost estimate. Nothing starts: the
 * caller posts the bodies it accepts (the CLI with --start).
 */
@Injectable()
export class OpenAIMigration {
  constructor(
    private readonly datasets: DatasetsService,
    private readonly jobs: JobsService,
    private readonly config: Config,
    private readonly http: OpenAIHttpClient,
  ) {}

  async plan(projectId: string, req: MigrationRequest): Promise<z.infer<typeof migrationPlanObject>> {
    const client = new OpenAIFineTuningClient(this.http, this.config.env.OPENAI_BASE_URL, req.apiKey, this.config.env.EVAL_REQUEST_TIMEOUT_MS);
    const source = req.jobs ? await Promise.all(req.jobs.map((id) => client.retrieveJob(id))) : (await client.listJobs()).filter((j) => j.status === 'succeeded');
    const copies = new Map<string, { copy: FileCopy; dataset: Dataset }>();
    const copy = async (fileId: string) => {
      let done = copies.get(fileId);
      if (!done) {
        const meta = await client.retrieveFile(fileId);
        const staged = await client.readFileContent(fileId, (content) => this.datasets.stage(projectId, meta.filename, content));
        const dataset = await this.datasets.register(staged, 'fine-tune');
        done = { copy: { openai_file: fileId, filename: meta.filename, file_id: dataset.id, status: dataset.status }, dataset };
        copies.set(fileId, done);
      }
      return done;
    };
    const planned: PlannedJob[] = [];
    for (const job of source) {
      const training = await copy(job.training_file);
      const validation = job.validation_file ? await copy(job.validation_file) : null;
      const entry: PlannedJob = {
        openai_job: { id: job.id, model: job.model, status: job.status, fine_tuned_model: job.fine_tuned_model },
        files: { training: training.copy, validation: validation?.copy ?? null },
        create: null,
        estimate: null,
        error: null,
      };
      const bad = [training, validation].find((f) => f && f.dataset.status !== 'ready');
      if (bad) {
        entry.error = { message: `${bad.copy.filename} (${bad.copy.openai_file}) is not a valid training file here: see GET /v1/datasets/${bad.dataset.id}`, param: bad === training ? 'training_file' : 'validation_file' };
      } else {
        entry.create = createBody(job, req.baseModel, training.dataset.id, validation?.dataset.id ?? null);
        try {
          const plan = await this.jobs.plan(projectId, entry.create);
          entry.estimate = { method: plan.methodType, hyperparameters: plan.hp, ...plan.estimate };
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          entry.error = { message: err.message, param: err.param };
        }
      }
      planned.push(entry);
    }
    return { object: 'migration.openai.plan', base_model: req.baseModel, jobs: planned };
  }
}

/** The same job on another base: method and hyperparameters as OpenAI ran them, suffix, seed and metadata kept. */
export function createBody(job: OpenAIJob, baseModel: string, trainingFile: string, validationFile: string | null): CreateJobBody {
  const type = job.method?.type === 'dpo' ? 'dpo' : 'supervised';
  const hp = pickHyperparameters((type === 'dpo' ? job.method?.dpo?.hyperparameters : job.method?.supervised?.hyperparameters) ?? job.hyperparameters ?? {});
  const metadata = { ...(job.metadata ?? {}) };
  if (Object.keys(metadata).length < 16) metadata.migrated_from = job.id;
  const suffix = job.user_provided_suffix ?? job.suffix ?? null;
  return {
    model: baseModel,
    training_file: trainingFile,
    ...(validationFile ? { validation_file: validationFile } : {}),
    ...(suffix ? { suffix } : {}),
    ...(typeof job.seed === 'number' ? { seed: job.seed } : {}),
    metadata,
    method: type === 'dpo' ? { type, dpo: { hyperparameters: hp } } : { type, supervised: { hyperparameters: hp } },
  } as CreateJobBody;
}

/** The hyperparameters both sides know, as "auto" or numbers. */
function pickHyperparameters(raw: Record<string, unknown>): Record<string, number | 'auto'> {
  const out: Record<string, number | 'auto'> = {};
  for (const k of ['n_epochs', 'batch_size', 'learning_rate_multiplier', 'beta']) {
    const v = raw[k];
    if (v === 'auto' || (typeof v === 'number' && Number.isFinite(v))) out[k] = v;
  }
  return out;
}
