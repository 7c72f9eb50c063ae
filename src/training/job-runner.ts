import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DomainError } from '../common/domain-error';
import { newId } from '../common/ids';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { FineTuningJob, Prisma } from '../generated/prisma/client';
import { TaskDeferred } from '../queue/queue-worker';
import { ObjectStore } from '../storage/object-store';
import { ArtifactFile, CONTRACT_VERSION, JobSpec, jobSpecSchema, TRAINER_EXIT } from './contract/job-contract';
import { fineTunedModelName } from './fine-tuned-model-name';
import { readHyperparameters } from './hyperparameters';
import { actualCost } from './job-cost';
import { failureParam, JobFailureCode } from './job-failure';
import { JobHooks } from './job-hooks';
import { JobState } from './job-state';
import { ModelCatalog } from './model-catalog';
import { readPlacement } from './placement/job-placement';
import { PlacementService } from './placement/placement.service';
import { TrainingRuntime, WorkloadExit } from './runtime/training-runtime';
import { TrainingRuntimes } from './runtime/training-runtimes';
import { explainFailure, RunOutcome, TrainerOutputReader } from './trainer-output';
import { TrainingQueue } from './training.queue';

/** Largest single file a trainer may upload through its POST policy. */
const MAX_ARTIFACT_BYTES = 20 * 1024 * 1024 * 1024;
/** S3 refuses SigV4 presigned URLs that last longer than 7 days. */
export const S3_MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

type StoredFile = { id: string; s3Key: string; sha256: string; bytes: bigint };
/** A job with the files its spec points at. */
type RunnableJob = FineTuningJob & { trainingFile: StoredFile; validationFile: StoredFile | null };

/**
 * The worker side of a fine-tuning job. Each step is safe to run twice: state moves are compare-and-set, the
 * container is found by label before one is created, and trainer output is stored with idempotent keys.
 */
@Injectable()
export class JobRunner {
  private readonly logger = new Logger(JobRunner.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: ObjectStore,
    private readonly catalog: ModelCatalog,
    private readonly state: JobState,
    private readonly queue: TrainingQueue,
    private readonly runtimes: TrainingRuntimes,
    private readonly placement: PlacementService,
    private readonly config: Config,
    private readonly hooks: JobHooks,
  ) {}

  /** validating_files -> queued. The files were validated line by line at upload; here they must still be usable. */
  async validate(jobId: string): Promise<void> {
    const job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId }, include: { trainingFile: true, validationFile: true } });
    if (!job || job.status !== 'validating_files') return;
    const files = [['invalid_training_file', job.trainingFile], ['invalid_validation_file', job.validationFile]] as const;
    for (const [code, file] of files) {
      if (!file) continue;
      const stored = await this.store.head(file.s3Key);
      if (file.status !== 'ready' || !stored || stored.bytes !== Number(file.bytes)) {
        await this.fail(job, ['validating_files'], code, `File ${file.id} is no longer available or not valid`);
        return;
      }
    }
    const queued = await this.state.transition(jobId, ['validating_files'], 'queued', { message: 'Files validated; the job is queued' });
    if (queued) await this.queue.enqueue('job.run', { jobId, attempt: queued.attempt + 1 });
  }

  /** queued -> running -> succeeded | failed, or re-attach to the workload of a job already running. */
  async run(jobId: string, attempt: number, shutdown?: AbortSignal): Promise<void> {
    if (!(await this.start(jobId, attempt))) return;
    const job = await this.prisma.fineTuningJob.findUniqueOrThrow({ where: { id: jobId }, include: { trainingFile: true, validationFile: true } });
    const runtime = await this.runtimes.forJob(job);
    const workloadId = await this.launch(job, attempt, runtime);

    const outcome = await this.followWithDeadline(job, attempt, workloadId, runtime, shutdown);
    if (shutdown?.aborted) throw new WorkerShuttingDown(jobId);
    if ((await runtime.inspect(workloadId))?.running) {
      // The log stream ended but the workload did not: the engine went away (a restart, a network cut). Settling
      // now would judge the run on part of its output; the retry re-reads it from the first line instead.
      throw new DomainError('service_unavailable', `the log stream of ${workloadId.slice(0, 12)} on ${runtime.name} broke while it still runs; following it again`);
    }
    const exit = await runtime.wait(workloadId);
    await this.settle(job, exit, outcome);
    await runtime.remove(workloadId).catch((err) => this.logger.warn({ err, workloadId }, 'could not remove the workload'));
    await this.queue.wakeGpuWaiters().catch((err) => this.logger.warn({ err }, 'could not wake jobs waiting for GPUs'));
  }

  /** queued -> running (placing GPU jobs first). False when this attempt has nothing (more) to do. */
  private async start(jobId: string, attempt: number): Promise<boolean> {
    const job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId } });
    if (!job) return false;
    if (job.status === 'running') return job.attempt === attempt; // re-attach; a newer attempt owns it otherwise
    if (job.status !== 'queued') return false; // finished or cancelled
    const model = this.catalog.get(job.model);
    if (model.gpus.count === 0) {
      const started = await this.state.transition(
        jobId,
        ['queued'],
        'running',
        { message: `Starting training container (attempt ${attempt}) with ${model.trainerImage}` },
        { attempt, startedAt: new Date() },
      );
      return Boolean(started);
    }
    const result = await this.placement.place(job, attempt, model);
    if (!('waiting' in result)) return true;
    // One event per distinct reason, however often the job looks again.
    const reason = `Waiting for GPUs: ${result.waiting}`;
    await this.state.event(job, { level: 'warn', message: reason, sourceKey: `wait:${attempt}:${createHash('sha256').update(reason).digest('hex').slice(0, 16)}` });
    throw new WaitingForGpus(jobId, this.config.env.PLACEMENT_RETRY_MS);
  }

  /** Starts this attempt's workload, or finds the one started before (a worker restart re-attaches). */
  private async launch(job: RunnableJob, attempt: number, runtime: TrainingRuntime): Promise<string> {
    const model = this.catalog.get(job.model);
    const existing = await runtime.find(job.id, attempt);
    if (existing) this.logger.log({ jobId: job.id, attempt, workloadId: existing, runtime: runtime.name }, 're-attaching to a training workload');
    // The spec (presigned URLs) is built only for a workload that does not exist yet; launch still starts one that
    // was created but never ran (a worker that died between create and start).
    const spec = existing ? null : await this.buildSpec(job, attempt);
    const { workloadId, created } = await runtime.launch({
      jobId: job.id,
      projectId: job.projectId,
      attempt,
      model: model.id,
      image: model.trainerImage,
      command: model.command,
      env: spec ? { LORAPLANE_JOB_SPEC: JSON.stringify(spec), LORAPLANE_SCRATCH_DIR: '/scratch' } : {},
      resources: model.resources,
      gpuCount: model.gpus.count,
      placement: readPlacement(job.placement),
    });
    if (created || job.workloadId !== workloadId) await this.prisma.fineTuningJob.update({ where: { id: job.id }, data: { workloadId } });
    return workloadId;
  }

  /** The wall-clock limit counts from the job's start, so it survives worker restarts. */
  private async followWithDeadline(job: FineTuningJob, attempt: number, workloadId: string, runtime: TrainingRuntime, shutdown?: AbortSignal): Promise<RunOutcome> {
    const limitMs = this.config.env.TRAINING_TIMEOUT_SECONDS * 1000;
    const deadline = (job.startedAt ?? new Date()).getTime() + limitMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.logger.warn({ jobId: job.id, workloadId }, 'training wall-clock limit reached; stopping the workload');
      runtime.stop(workloadId, this.config.env.TRAINING_STOP_GRACE_SECONDS).catch((err) => this.logger.warn({ err, workloadId }, 'could not stop a timed-out workload'));
    }, Math.max(0, deadline - Date.now()));
    const reader = new TrainerOutputReader(this.prisma, job, attempt);
    try {
      await runtime.follow(workloadId, reader, shutdown);
    } finally {
      clearTimeout(timer);
    }
    await reader.close();
    return { ...reader.outcome, timedOut };
  }

  /**
   * The trainer's spec, checked against the contract before anything starts: a spec the trainer would refuse is a
   * bug here, not the user's. Presigned URLs outlive the wall-clock limit (config.schema keeps that under S3's
   * 7-day cap), so a job that runs to its limit can still read its data and upload its adapter.
   */
  private async buildSpec(job: RunnableJob, attempt: number): Promise<JobSpec> {
    const hp = readHyperparameters(job);
    const model = this.catalog.get(job.model);
    const ttl = presignSecondsForTraining(this.config);
    const fileRef = async (f: StoredFile) => ({ url: await this.store.presignGet(f.s3Key, ttl), sha256: f.sha256, bytes: Number(f.bytes) });
    const output = await this.store.presignPost(`${job.outputPrefix}attempt-${attempt}/`, MAX_ARTIFACT_BYTES, ttl);
    const spec = jobSpecSchema.safeParse({
      contract_version: CONTRACT_VERSION,
      job_id: job.id,
      attempt,
      model: { name: model.id, weights: model.weights.ref },
      method: hp.method,
      seed: job.seed,
      hyperparameters: { n_epochs: hp.n_epochs, batch_size: hp.batch_size, learning_rate: hp.learning_rate, lora: hp.lora, ...(hp.beta !== undefined ? { beta: hp.beta } : {}), ...(hp.rpo_alpha !== undefined ? { rpo_alpha: hp.rpo_alpha } : {}) },
      data: {
        training_file: await fileRef(job.trainingFile),
        validation_file: job.validationFile ? await fileRef(job.validationFile) : null,
      },
      output: { url: output.url, fields: output.fields, key_prefix: output.keyPrefix, max_bytes: output.maxBytes, expires_at: output.expiresAt },
      // What cancel and the wall-clock limit give a trainer between SIGTERM and SIGKILL, so it can checkpoint in time.
      stop_grace_seconds: Math.max(1, this.config.env.TRAINING_STOP_GRACE_SECONDS),
    } satisfies JobSpec);
    if (!spec.success) {
      const issue = spec.error.issues[0];
      throw new DomainError('internal', `the job spec of ${job.id} breaks the trainer contract at ${issue.path.join('.')}: ${issue.message}`);
    }
    return spec.data;
  }

  private async settle(job: FineTuningJob, exit: WorkloadExit, outcome: RunOutcome): Promise<void> {
    const current = await this.prisma.fineTuningJob.findUniqueOrThrow({ where: { id: job.id } });
    if (current.status === 'cancelled') {
      // The workload has ended (wait returned), so its GPUs are free to give away now.
      await this.prisma.gpuAllocation.deleteMany({ where: { jobId: job.id } });
      return;
    }
    if (current.status !== 'running') return;
    const finishedAt = new Date();
    const cost = actualCost(current, this.catalog.get(job.model), finishedAt) as unknown as Prisma.InputJsonValue;
    if (outcome.timedOut) {
      const limit = this.config.env.TRAINING_TIMEOUT_SECONDS;
      return this.fail(job, ['running'], 'timeout', `the job ran longer than the wall-clock limit of ${limit} s and was stopped (exit code ${exit.exitCode})`, cost);
    }
    if (exit.exitCode === TRAINER_EXIT.ok && outcome.artifact) {
      const problem = await this.verifyArtifact(outcome.artifact.key_prefix, outcome.artifact.files, job.outputPrefix);
      // The GPUs were used all the same: an invalid artifact costs what the run cost.
      if (problem) return this.fail(job, ['running'], 'artifact_invalid', problem, cost);
      const project = await this.prisma.project.findUniqueOrThrow({ where: { id: job.projectId } });
      const succeeded = await this.state.transition(
        job.id,
        ['running'],
        'succeeded',
        { message: 'The job has successfully completed', data: { files: outcome.artifact.files } as unknown as Prisma.InputJsonValue },
        {
          finishedAt,
          costActual: cost,
          fineTunedModel: fineTunedModelName(job.model, project.slug, job.suffix, job.id),
          trainedTokens: outcome.artifact.trained_tokens ?? null,
          resultFiles: { key_prefix: outcome.artifact.key_prefix, files: outcome.artifact.files } as unknown as Prisma.InputJsonValue,
        },
      );
      if (succeeded) await this.hooks.succeeded(succeeded, (e) => this.state.event(succeeded, e));
      return;
    }
    const [code, message] = explainFailure(exit, outcome);
    await this.fail(job, ['running'], code, message, cost);
  }

  /** The files must be in S3, under this job's prefix, with the sizes and sha256 the trainer announced. */
  private async verifyArtifact(prefix: string, files: ArtifactFile[], jobPrefix: string): Promise<string | null> {
    if (!prefix.startsWith(jobPrefix)) return `the trainer announced files outside the job's prefix (${prefix})`;
    for (const file of files) {
      const key = prefix + file.name;
      const body = await this.store.get(key);
      if (!body) return `the trainer announced ${file.name} but it is not in object storage`;
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of body) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      const sha = hash.digest('hex');
      if (bytes !== file.bytes || sha !== file.sha256) {
        return `${file.name} in object storage (${bytes} bytes, sha256 ${sha.slice(0, 12)}…) does not match what the trainer announced (${file.bytes} bytes, ${file.sha256.slice(0, 12)}…)`;
      }
    }
    return null;
  }

  async fail(job: Pick<FineTuningJob, 'id'>, from: FineTuningJob['status'][], code: JobFailureCode, message: string, cost?: Prisma.InputJsonValue): Promise<void> {
    await this.state.transition(
      job.id,
      from,
      'failed',
      { level: 'error', message: `The job failed: ${message}` },
      { finishedAt: new Date(), error: { code, message, param: failureParam(code) }, ...(cost ? { costActual: cost } : {}) },
    );
  }

  /**
   * An infrastructure failure the queue will retry. The user reads a sentence and an error id; the driver's own
   * message (which can name hosts, SQL or internals) goes to the log under that id.
   */
  async retrying(jobId: string, err: unknown, attemptsMade: number, attempts: number): Promise<void> {
    const job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId }, select: { id: true, projectId: true } });
    if (!job) return;
    const errorId = newId.error();
    this.logger.warn({ err, jobId, errorId }, 'infrastructure problem; the task will retry');
    const reason = userReason(err);
    await this.state.event(job, {
      level: 'warn',
      message: reason
        ? `loraplane will retry (${attemptsMade} of ${attempts} attempts used): ${reason} (error id ${errorId})`
        : `loraplane hit an infrastructure problem (${infraProblem(err)}; error id ${errorId}) and will retry (${attemptsMade} of ${attempts} attempts used)`,
    });
  }

  /** Called when the queue gives up on a task (its retries are spent): the job must not stay running forever. */
  async giveUp(jobId: string, err: unknown): Promise<void> {
    const errorId = newId.error();
    this.logger.error({ err, jobId, errorId }, 'task failed for good; failing the job');
    await this.fail({ id: jobId }, ['validating_files', 'queued', 'running'], 'internal_error', `loraplane could not run the job (${infraProblem(err)}; error id ${errorId})`);
  }
}

/** Long enough for a run to its wall-clock limit plus its stop grace, with an hour to spare for upload. */
export function presignSecondsForTraining(config: Config): number {
  const { TRAINING_TIMEOUT_SECONDS, TRAINING_STOP_GRACE_SECONDS } = config.env;
  return Math.min(S3_MAX_PRESIGN_SECONDS, TRAINING_TIMEOUT_SECONDS + TRAINING_STOP_GRACE_SECONDS + 3600);
}

/** What kind of outside system failed, in words a user can read; never the driver's message. */
/** A runtime's own sentence meant for the tenant (e.g. why a pod was evicted), when the error carries one. */
function userReason(err: unknown): string | undefined {
  const reason = err instanceof DomainError ? err.details?.userReason : undefined;
  return typeof reason === 'string' ? reason : undefined;
}

function infraProblem(err: unknown): string {
  if (err instanceof DomainError && err.code === 'service_unavailable') return 'a service it depends on was unavailable';
  const name = (err as Error)?.name ?? '';
  if (name.startsWith('PrismaClient')) return 'the database was unavailable';
  return 'an internal error';
}

/** Not a failure either: no GPUs now; the task comes back after `retryMs` (or sooner, when GPUs are freed). */
export class WaitingForGpus extends TaskDeferred {
  constructor(jobId: string, retryMs: number) {
    super(retryMs, `${jobId} waits for GPUs`);
    this.name = 'WaitingForGpus';
  }
}

/** Not a failure of the job: the worker let go of it, and another worker picks it up. */
export class WorkerShuttingDown extends TaskDeferred {
  constructor(jobId: string) {
    super(0, `worker shutting down; ${jobId} is left to the next worker`);
    this.name = 'WorkerShuttingDown';
  }
}
