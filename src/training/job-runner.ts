import { Injectable, Logger } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { createHash } from 'node:crypto';
import { DomainError } from '../common/domain-error';
import { newId } from '../common/ids';
import { scrubSecrets } from '../common/logger';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { FineTuningJob, Prisma } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { ArtifactFile, CONTRACT_VERSION, JobSpec, parseTrainerLine, TrainerEvent, TRAINER_EXIT } from './contract/job-contract';
import { fineTunedModelName } from './fine-tuned-model-name';
import { ResolvedHyperparameters } from './hyperparameters';
import { actualCost } from './job-cost';
import { JobHooks } from './job-hooks';
import { eventRow, JobState, NewEvent } from './job-state';
import { ModelCatalog } from './model-catalog';
import { DockerEngines, JobPlacement } from './placement/docker-engines';
import { PlacementService } from './placement/placement.service';
import { DockerRuntime } from './runtime/docker-runtime';
import { TrainingQueue } from './training.queue';

/** Trainer output is written in batches: one INSERT per line cannot keep up with a chatty trainer. */
const EVENT_BATCH_ROWS = 1000;
/** A batch that is not full is written after this long, so events still appear live. */
const EVENT_FLUSH_MS = 100;

/** Largest single file a trainer may upload through its POST policy. */
const MAX_ARTIFACT_BYTES = 20 * 1024 * 1024 * 1024;

interface RunOutcome {
  artifact?: Extract<TrainerEvent, { type: 'artifact' }>;
  error?: Extract<TrainerEvent, { type: 'error' }>;
  stderrTail: string[];
  contractViolations: string[];
  timedOut?: boolean;
}

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
    private readonly engines: DockerEngines,
    private readonly placement: PlacementService,
    private readonly config: Config,
    private readonly hooks: JobHooks,
  ) {}

  /** validating_files -> queued. The files were validated line by line at upload; here they must still be usable. */
  async validate(jobId: string): Promise<void> {
    const job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId }, include: { trainingFile: true, validationFile: true } });
    if (!job || job.status !== 'validating_files') return;
    for (const file of [job.trainingFile, job.validationFile]) {
      if (!file) continue;
      const stored = await this.store.head(file.s3Key);
      if (file.status !== 'ready' || !stored || stored.bytes !== Number(file.bytes)) {
        await this.fail(job, ['validating_files'], 'invalid_training_file', `File ${file.id} is no longer available or not valid`, 'training_file');
        return;
      }
    }
    const queued = await this.state.transition(jobId, ['validating_files'], 'queued', { message: 'Files validated; the job is queued' });
    if (queued) await this.queue.enqueue('job.run', { jobId, attempt: queued.attempt + 1 });
  }

  /** queued -> running -> succeeded | failed, or re-attach to the container of a job already running. */
  async run(jobId: string, attempt: number, shutdown?: AbortSignal): Promise<void> {
    let job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId }, include: { trainingFile: true, validationFile: true } });
    if (!job) return;
    const model = this.catalog.get(job.model);
    if (job.status === 'queued') {
      if (model.gpus.count > 0) {
        const result = await this.placement.place(job, attempt, model);
        if ('waiting' in result) {
          // One event per distinct reason, however often the job looks again.
          const reason = `Waiting for GPUs: ${result.waiting}`;
          await this.state.event(job, { level: 'warn', message: reason, sourceKey: `wait:${attempt}:${createHash('sha256').update(reason).digest('hex').slice(0, 16)}` });
          throw new WaitingForGpus(jobId, this.config.env.PLACEMENT_RETRY_MS);
        }
      } else {
        const started = await this.state.transition(
          jobId,
          ['queued'],
          'running',
          { message: `Starting training container (attempt ${attempt}) with ${model.trainerImage}` },
          { attempt, startedAt: new Date() },
        );
        if (!started) return;
      }
    } else if (job.status !== 'running' || job.attempt !== attempt) {
      return; // finished, cancelled, or a newer attempt owns it
    }
    job = await this.prisma.fineTuningJob.findUniqueOrThrow({ where: { id: jobId }, include: { trainingFile: true, validationFile: true } });
    const runtime = await this.engines.forJob(job);
    const placement = job.placement as JobPlacement | null;

    let containerId = await runtime.find(jobId, attempt);
    if (!containerId) {
      const spec = await this.buildSpec(job, attempt);
      containerId = await runtime.start({
        jobId,
        projectId: job.projectId,
        attempt,
        model: model.id,
        image: model.trainerImage,
        command: model.command,
        env: { LORAPLANE_JOB_SPEC: JSON.stringify(spec), LORAPLANE_SCRATCH_DIR: '/scratch' },
        resources: model.resources,
        gpuDeviceIds: (placement?.gpu_indices ?? []).map(String),
      });
      await this.prisma.fineTuningJob.update({ where: { id: jobId }, data: { containerId } });
    } else {
      this.logger.log({ jobId, attempt, containerId }, 're-attaching to a training container');
      // A container created by a worker that died between create and start has never run.
      await runtime.ensureStarted(containerId);
    }

    const outcome = await this.followWithDeadline(job, attempt, containerId, runtime, shutdown);
    if (shutdown?.aborted) throw new WorkerShuttingDown(jobId);
    if ((await runtime.state(containerId))?.running) {
      // The log stream ended but the container did not: the engine went away (a restart, a network cut). Settling
      // now would judge the run on part of its output; the retry re-reads it from the first line instead.
      throw new DomainError('service_unavailable', `the log stream of ${containerId.slice(0, 12)} broke while it still runs; following it again`);
    }
    const exit = await runtime.wait(containerId);
    await this.settle(job, exit, outcome);
    await runtime.remove(containerId).catch((err) => this.logger.warn({ err, containerId }, 'could not remove container'));
    await this.queue.wakeGpuWaiters().catch((err) => this.logger.warn({ err }, 'could not wake jobs waiting for GPUs'));
  }

  /** The wall-clock limit counts from the job's start, so it survives worker restarts. */
  private async followWithDeadline(job: FineTuningJob, attempt: number, containerId: string, runtime: DockerRuntime, shutdown?: AbortSignal): Promise<RunOutcome> {
    const limitMs = this.config.env.TRAINING_TIMEOUT_SECONDS * 1000;
    const deadline = (job.startedAt ?? new Date()).getTime() + limitMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.logger.warn({ jobId: job.id, containerId }, 'training wall-clock limit reached; stopping the container');
      runtime.stop(containerId, this.config.env.TRAINING_STOP_GRACE_SECONDS).catch((err) => this.logger.warn({ err, containerId }, 'could not stop a timed-out container'));
    }, Math.max(0, deadline - Date.now()));
    try {
      const outcome = await this.follow(job, attempt, containerId, runtime, shutdown);
      return { ...outcome, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }

  private async buildSpec(job: FineTuningJob & { trainingFile: { s3Key: string; sha256: string; bytes: bigint }; validationFile: { s3Key: string; sha256: string; bytes: bigint } | null }, attempt: number): Promise<JobSpec> {
    const hp = job.hyperparameters as unknown as ResolvedHyperparameters;
    const model = this.catalog.get(job.model);
    const fileRef = async (f: { s3Key: string; sha256: string; bytes: bigint }) => ({ url: await this.store.presignGet(f.s3Key), sha256: f.sha256, bytes: Number(f.bytes) });
    const output = await this.store.presignPost(`${job.outputPrefix}attempt-${attempt}/`, MAX_ARTIFACT_BYTES);
    return {
      contract_version: CONTRACT_VERSION,
      job_id: job.id,
      attempt,
      model: { name: model.id, weights: model.weights.ref },
      method: ((job.method as { type?: string }).type ?? 'supervised') as 'supervised' | 'dpo',
      seed: job.seed,
      hyperparameters: { n_epochs: hp.n_epochs, batch_size: hp.batch_size, learning_rate: hp.learning_rate, ...(hp.beta !== undefined ? { beta: hp.beta } : {}), lora: hp.lora },
      data: {
        training_file: await fileRef(job.trainingFile),
        validation_file: job.validationFile ? await fileRef(job.validationFile) : null,
      },
      output: { url: output.url, fields: output.fields, key_prefix: output.keyPrefix, max_bytes: output.maxBytes, expires_at: output.expiresAt },
      // What cancel and the wall-clock limit give a trainer between SIGTERM and SIGKILL, so it can checkpoint in time.
      stop_grace_seconds: Math.max(1, this.config.env.TRAINING_STOP_GRACE_SECONDS),
    };
  }

  /**
   * Turns the container's stdout into job events and checkpoint rows, from its first line (re-reads collapse on
   * sourceKey and on (job, attempt, step)). Rows are written in batches, in line order, by one writer at a time.
   */
  private async follow(job: FineTuningJob, attempt: number, containerId: string, runtime: DockerRuntime, shutdown?: AbortSignal): Promise<RunOutcome> {
    const outcome: RunOutcome = { stderrTail: [], contractViolations: [], timedOut: false };
    const keep = (line: string) => {
      outcome.stderrTail.push(scrubSecrets(line).slice(0, 500));
      if (outcome.stderrTail.length > 20) outcome.stderrTail.shift();
    };
    const batch = new EventBatch(this.prisma, job, attempt);
    const timer = setInterval(() => batch.flush(), EVENT_FLUSH_MS);
    try {
      await runtime.follow(
        containerId,
        async (line, lineNo) => {
          const parsed = parseTrainerLine(line);
          if (parsed.kind === 'log') return keep(parsed.text);
          if (parsed.kind === 'invalid') {
            outcome.contractViolations.push(`line ${lineNo}: ${parsed.problem}`);
            return;
          }
          const { event } = parsed;
          if (event.type === 'artifact') outcome.artifact = event;
          if (event.type === 'error') outcome.error = event;
          if (event.type === 'checkpoint') batch.checkpoint(event);
          const row = toJobEvent(event);
          if (row) batch.add({ ...row, sourceKey: `a${attempt}:${lineNo}` });
          if (batch.size >= EVENT_BATCH_ROWS) await batch.flushBehind();
        },
        keep,
        shutdown,
      );
    } finally {
      clearInterval(timer);
    }
    await batch.flush();
    batch.throwIfFailed();
    return outcome;
  }

  private async settle(job: FineTuningJob, exit: { exitCode: number; oomKilled: boolean }, outcome: RunOutcome): Promise<void> {
    const current = await this.prisma.fineTuningJob.findUniqueOrThrow({ where: { id: job.id } });
    if (current.status !== 'running') return; // cancelled while it ran: stays cancelled
    const finishedAt = new Date();
    const cost = actualCost(current, this.catalog.get(job.model), finishedAt) as unknown as Prisma.InputJsonValue;
    if (outcome.timedOut) {
      const limit = this.config.env.TRAINING_TIMEOUT_SECONDS;
      return this.fail(job, ['running'], 'timeout', `the job ran longer than the wall-clock limit of ${limit} s and was stopped (exit code ${exit.exitCode})`, null, cost);
    }
    if (exit.exitCode === TRAINER_EXIT.ok && outcome.artifact) {
      const problem = await this.verifyArtifact(outcome.artifact.key_prefix, outcome.artifact.files, job.outputPrefix);
      if (problem) return this.fail(job, ['running'], 'artifact_invalid', problem);
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
    await this.fail(job, ['running'], code, message, null, cost);
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

  async fail(job: Pick<FineTuningJob, 'id'>, from: FineTuningJob['status'][], code: string, message: string, param: string | null = null, cost?: Prisma.InputJsonValue): Promise<void> {
    await this.state.transition(
      job.id,
      from,
      'failed',
      { level: 'error', message: `The job failed: ${message}` },
      { finishedAt: new Date(), error: { code, message, param }, ...(cost ? { costActual: cost } : {}) },
    );
  }

  /** An infrastructure failure the queue will retry: the user sees it in the job's events. */
  async retrying(jobId: string, reason: string, attemptsMade: number, attempts: number): Promise<void> {
    const job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId }, select: { id: true, projectId: true } });
    if (!job) return;
    await this.state.event(job, {
      level: 'warn',
      message: `loraplane hit an infrastructure problem and will retry (${attemptsMade} of ${attempts} attempts used): ${scrubSecrets(reason)}`,
    });
  }

  /** Called when the queue gives up on a task (its retries are spent): the job must not stay running forever. */
  async giveUp(jobId: string, reason: string): Promise<void> {
    await this.fail({ id: jobId }, ['validating_files', 'queued', 'running'], 'internal_error', `loraplane could not run the job: ${scrubSecrets(reason)}`);
  }
}

/** Not a failure either: no GPUs now; the task comes back after `retryMs` (or sooner, when GPUs are freed). */
export class WaitingForGpus extends Error {
  constructor(jobId: string, readonly retryMs: number) {
    super(`${jobId} waits for GPUs`);
    this.name = 'WaitingForGpus';
  }
}

/**
 * Buffers a run's events and checkpoints and writes them in order: one multi-row INSERT per batch, never two
 * batches at once. A failed write is kept and rethrown by throwIfFailed, so the task retries and re-reads the
 * output (inserts are idempotent).
 */
class EventBatch {
  private events: Prisma.JobEventCreateManyInput[] = [];
  private checkpoints: Prisma.CheckpointCreateManyInput[] = [];
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown = null;

  constructor(private readonly prisma: PrismaService, private readonly job: FineTuningJob, private readonly attempt: number) {}

  get size() {
    return this.events.length;
  }

  add(event: NewEvent) {
    this.events.push(eventRow(this.job, event));
  }

  checkpoint(event: Extract<TrainerEvent, { type: 'checkpoint' }>) {
    this.checkpoints.push({
      id: newId.checkpoint(),
      jobId: this.job.id,
      projectId: this.job.projectId,
      attempt: this.attempt,
      step: event.step,
      keyPrefix: event.key_prefix,
      files: event.files as unknown as Prisma.InputJsonValue,
      metrics: event.metrics,
    });
  }

  flush(): Promise<void> {
    if (!this.events.length && !this.checkpoints.length) return this.writing;
    const events = this.events;
    const checkpoints = this.checkpoints;
    this.events = [];
    this.checkpoints = [];
    this.writing = this.writing.then(async () => {
      if (this.failure) return;
      try {
        if (events.length) await insertEvents(this.prisma, events);
        if (checkpoints.length) await this.prisma.checkpoint.createMany({ data: checkpoints, skipDuplicates: true });
      } catch (err) {
        this.failure = err;
      }
    });
    return this.writing;
  }

  /** Starts writing this batch and waits only for the one before it: parsing overlaps with one write in flight. */
  async flushBehind(): Promise<void> {
    const previous = this.writing;
    void this.flush();
    await previous;
  }

  throwIfFailed() {
    if (this.failure) throw this.failure;
  }
}

/**
 * One INSERT ... SELECT FROM unnest(arrays) per batch: eight array parameters instead of eight per row, which is
 * what lets one worker store thousands of events a second. Rows get their seq in array order; a row whose
 * (job, sourceKey) is already stored (output re-read after a restart) is skipped.
 */
async function insertEvents(prisma: PrismaService, rows: Prisma.JobEventCreateManyInput[]): Promise<void> {
  const col = <T>(f: (r: Prisma.JobEventCreateManyInput) => T) => rows.map(f);
  await prisma.$executeRaw`
    INSERT INTO "JobEvent" ("id", "jobId", "projectId", "level", "type", "message", "data", "sourceKey")
    SELECT id, job, project, level::"EventLevel", type::"EventType", message, data::jsonb, source
    FROM unnest(
      ${col((r) => r.id)}::text[], ${col((r) => r.jobId)}::text[], ${col((r) => r.projectId)}::text[],
      ${col((r) => r.level)}::text[], ${col((r) => r.type)}::text[], ${col((r) => r.message)}::text[],
      ${col((r) => (r.data === undefined || r.data === null ? null : JSON.stringify(r.data)))}::text[], ${col((r) => r.sourceKey ?? null)}::text[]
    ) WITH ORDINALITY AS t(id, job, project, level, type, message, data, source, n)
    ORDER BY n
    ON CONFLICT ("jobId", "sourceKey") DO NOTHING`;
}

/** Not a failure of the job: the worker let go of it, and another worker picks it up. */
export class WorkerShuttingDown extends Error {
  constructor(jobId: string) {
    super(`worker shutting down; ${jobId} is left to the next worker`);
    this.name = 'WorkerShuttingDown';
  }
}

function toJobEvent(event: TrainerEvent): NewEvent | null {
  switch (event.type) {
    case 'status':
      return { message: event.message, data: { status: event.status } };
    case 'metrics': {
      const { type: _t, ...data } = event;
      return { type: 'metrics', message: `Step ${event.step}/${event.total_steps}: training loss=${event.train_loss.toFixed(4)}`, data };
    }
    case 'checkpoint':
      return { message: `Checkpoint saved at step ${event.step}`, data: { step: event.step, files: event.files } as unknown as Prisma.InputJsonValue };
    case 'artifact':
      return { message: `Adapter uploaded: ${event.files.map((f) => f.name).join(', ')}`, data: { files: event.files } as unknown as Prisma.InputJsonValue };
    case 'error':
      return { level: 'error', message: `Trainer error (${event.code}): ${event.message}`, data: { code: event.code, line: event.line ?? null } };
  }
}

/** A readable reason for a failed run: the trainer's own error event first, then what the engine tells. */
export function explainFailure(exit: { exitCode: number; oomKilled: boolean }, outcome: RunOutcome): [string, string] {
  if (exit.oomKilled) return ['out_of_memory', `the trainer ran out of memory (exit code ${exit.exitCode}, OOMKilled): use a smaller batch_size or a model with more memory`];
  if (outcome.error) {
    const n = outcome.error.line;
    const line = n && !new RegExp(`\\bline ${n}\\b`).test(outcome.error.message) ? ` (line ${n})` : '';
    const code = outcome.error.code === 'invalid_data' ? 'invalid_training_file' : `trainer_${outcome.error.code}`;
    return [code, `${outcome.error.message}${line}; exit code ${exit.exitCode}`];
  }
  if (exit.exitCode === 0) {
    const why = outcome.contractViolations.length ? `; contract violations: ${outcome.contractViolations.slice(0, 3).join('; ')}` : '';
    return ['contract_error', `the trainer exited 0 without announcing an adapter artifact${why}`];
  }
  const tail = outcome.stderrTail.slice(-5).join(' | ');
  return ['trainer_exit', `the trainer exited with code ${exit.exitCode}${tail ? `: ${tail}` : ''}`];
}
