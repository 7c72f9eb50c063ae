import { newId } from '../common/ids';
import { scrubSecrets } from '../common/logger';
import { BatchedWriter } from '../db/batched-writer';
import { PrismaService } from '../db/prisma.service';
import { FineTuningJob, Prisma } from '../generated/prisma/client';
import { parseTrainerLine, TrainerEvent } from './contract/job-contract';
import { JobFailureCode, trainerFailureCode } from './job-failure';
import { eventRow, NewEvent } from './job-state';
import { WorkloadExit, WorkloadOutput } from './runtime/training-runtime';

/** Trainer output is written in batches: one INSERT per line cannot keep up with a chatty trainer. */
const EVENT_BATCH_ROWS = 1000;
/** A batch that is not full is written after this long, so events still appear live. */
const EVENT_FLUSH_MS = 100;
/** stderr lines kept for the failure message of a trainer that exits without its own error event. */
const STDERR_TAIL_LINES = 20;

export interface RunOutcome {
  artifact?: Extract<TrainerEvent, { type: 'artifact' }>;
  error?: Extract<TrainerEvent, { type: 'error' }>;
  stderrTail: string[];
  contractViolations: string[];
  timedOut?: boolean;
}

type RunRow = { event: Prisma.JobEventCreateManyInput } | { checkpoint: Prisma.CheckpointCreateManyInput };

/**
 * Turns one attempt's stdout into job events and checkpoint rows, from its first line (re-reads collapse on
 * sourceKey and on (job, attempt, step)), and gathers what settling the run needs. Rows are written in line order.
 */
export class TrainerOutputReader implements WorkloadOutput {
  readonly outcome: RunOutcome = { stderrTail: [], contractViolations: [], timedOut: false };
  private readonly writer: BatchedWriter<RunRow>;
  /** Where this attempt may upload: a checkpoint announced elsewhere breaks the contract and is not recorded. */
  private readonly attemptPrefix: string;

  constructor(prisma: PrismaService, private readonly job: FineTuningJob, private readonly attempt: number) {
    this.writer = new BatchedWriter((rows) => writeRunRows(prisma, rows), { maxRows: EVENT_BATCH_ROWS, flushMs: EVENT_FLUSH_MS });
    this.attemptPrefix = `${job.outputPrefix}attempt-${attempt}/`;
  }

  async onLine(line: string, lineNo: number): Promise<void> {
    const parsed = parseTrainerLine(line);
    if (parsed.kind === 'log') return this.onStderr(parsed.text);
    if (parsed.kind === 'invalid') {
      this.outcome.contractViolations.push(`line ${lineNo}: ${parsed.problem}`);
      return;
    }
    const { event } = parsed;
    if (event.type === 'checkpoint' && !event.key_prefix.startsWith(this.attemptPrefix)) {
      this.outcome.contractViolations.push(`line ${lineNo}: checkpoint at step ${event.step} announced outside the attempt's prefix (${event.key_prefix})`);
      return;
    }
    if (event.type === 'artifact') this.outcome.artifact = event;
    if (event.type === 'error') this.outcome.error = event;
    if (event.type === 'checkpoint') await this.writer.push({ checkpoint: this.checkpointRow(event) });
    const row = toJobEvent(event);
    if (row) await this.writer.push({ event: eventRow(this.job, { ...row, sourceKey: `a${this.attempt}:${lineNo}` }) });
  }

  onStderr(line: string): void {
    this.outcome.stderrTail.push(scrubSecrets(line).slice(0, 500));
    if (this.outcome.stderrTail.length > STDERR_TAIL_LINES) this.outcome.stderrTail.shift();
  }

  /** Writes what is left; throws if a write failed (the task retries and re-reads the output; inserts are idempotent). */
  close(): Promise<void> {
    return this.writer.close();
  }

  private checkpointRow(event: Extract<TrainerEvent, { type: 'checkpoint' }>): Prisma.CheckpointCreateManyInput {
    return {
      id: newId.checkpoint(),
      jobId: this.job.id,
      projectId: this.job.projectId,
      attempt: this.attempt,
      step: event.step,
      keyPrefix: event.key_prefix,
      files: event.files as unknown as Prisma.InputJsonValue,
      metrics: event.metrics,
    };
  }
}

/** Events first, then checkpoints, per batch (a checkpoint's event and row land in the same batch). */
async function writeRunRows(prisma: PrismaService, rows: RunRow[]): Promise<void> {
  const events = rows.flatMap((r) => ('event' in r ? [r.event] : []));
  const checkpoints = rows.flatMap((r) => ('checkpoint' in r ? [r.checkpoint] : []));
  if (events.length) await insertEvents(prisma, events);
  if (checkpoints.length) await prisma.checkpoint.createMany({ data: checkpoints, skipDuplicates: true });
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

/** A readable reason for a failed run: the trainer's own error event first, then what the runtime tells. */
export function explainFailure(exit: WorkloadExit, outcome: RunOutcome): [JobFailureCode, string] {
  if (exit.oomKilled) return ['out_of_memory', `the trainer ran out of memory (exit code ${exit.exitCode}, OOMKilled): use a smaller batch_size or a model with more memory`];
  if (outcome.error) {
    const n = outcome.error.line;
    const line = n && !new RegExp(`\\bline ${n}\\b`).test(outcome.error.message) ? ` (line ${n})` : '';
    return [trainerFailureCode(outcome.error.code), `${outcome.error.message}${line}; exit code ${exit.exitCode}`];
  }
  if (exit.exitCode === 0) {
    const why = outcome.contractViolations.length ? `; contract violations: ${outcome.contractViolations.slice(0, 3).join('; ')}` : '';
    return ['contract_error', `the trainer exited 0 without announcing an adapter artifact${why}`];
  }
  const tail = outcome.stderrTail.slice(-5).join(' | ');
  return ['trainer_exit', `the trainer exited with code ${exit.exitCode}${tail ? `: ${tail}` : ''}`];
}
