import { Injectable } from '@nestjs/common';
import { newId } from '../common/ids';
import { PrismaService } from '../db/prisma.service';
import { EventLevel, EventType, FineTuningJob, JobStatus, Prisma } from '../generated/prisma/client';
import { WebhookEventType } from '../webhooks/webhook-events';
import { recordWebhook, WebhookOutbox } from '../webhooks/webhook-outbox';
import { JobReadCache } from './job-read-cache';
import { TERMINAL } from './job-statuses';
import { toJobWebhookData } from './job-views';

export interface NewEvent {
  level?: EventLevel;
  type?: EventType;
  message: string;
  data?: Prisma.InputJsonValue;
  /** Makes the insert idempotent (trainer output re-read after a restart). */
  sourceKey?: string;
}

/** The webhook event of each terminal status, recorded in the transition's own transaction. */
const WEBHOOK_EVENTS: Partial<Record<JobStatus, WebhookEventType>> = {
  succeeded: 'fine_tuning.job.succeeded',
  failed: 'fine_tuning.job.failed',
  cancelled: 'fine_tuning.job.cancelled',
};

/**
 * Every status change of a fine-tuning job goes through here: one transaction, a compare-and-set on the current
 * status (so two workers, or a worker and a cancel, cannot both win), and an event row.
 */
@Injectable()
export class JobState {
  constructor(private readonly prisma: PrismaService, private readonly outbox: WebhookOutbox, private readonly reads: JobReadCache) {}

  /** Moves the job from one of `from` to `to`; returns the updated job, or null if it was not in `from`. */
  async transition(
    jobId: string,
    from: JobStatus[],
    to: JobStatus,
    event: NewEvent,
    data: Prisma.FineTuningJobUpdateManyMutationInput = {},
    opts: { keepGpus?: boolean } = {},
  ): Promise<FineTuningJob | null> {
    const job = await this.prisma.$transaction((tx) => transitionIn(tx, jobId, from, to, event, data, opts));
    // This process's next read sees the change at once; other processes hear of it through the change feed.
    if (job) this.reads.invalidate();
    if (job && WEBHOOK_EVENTS[to]) await this.outbox.dispatchSoon();
    return job;
  }

  async event(job: Pick<FineTuningJob, 'id' | 'projectId'>, event: NewEvent): Promise<void> {
    await this.prisma.jobEvent.createMany({ data: [eventRow(job, event)], skipDuplicates: true });
  }

  async events(job: Pick<FineTuningJob, 'id' | 'projectId'>, events: NewEvent[]): Promise<void> {
    if (events.length) await this.prisma.jobEvent.createMany({ data: events.map((e) => eventRow(job, e)), skipDuplicates: true });
  }
}

/**
 * The compare-and-set inside a caller's transaction (placement allocates GPUs in the same one). A terminal state
 * frees the job's GPUs in the same transaction, unless the caller frees them itself once the container stopped,
 * and writes its webhook event to the outbox (the caller nudges delivery once committed; else the sweep finds it).
 */
export async function transitionIn(
  tx: Prisma.TransactionClient,
  jobId: string,
  from: JobStatus[],
  to: JobStatus,
  event: NewEvent,
  data: Prisma.FineTuningJobUpdateManyMutationInput = {},
  opts: { keepGpus?: boolean } = {},
): Promise<FineTuningJob | null> {
  const { count } = await tx.fineTuningJob.updateMany({ where: { id: jobId, status: { in: from } }, data: { ...data, status: to } });
  if (count === 0) return null;
  const job = await tx.fineTuningJob.findUniqueOrThrow({ where: { id: jobId } });
  await tx.jobEvent.create({ data: eventRow(job, event) });
  if (TERMINAL.includes(to) && !opts.keepGpus) await tx.gpuAllocation.deleteMany({ where: { jobId } });
  const webhook = WEBHOOK_EVENTS[to];
  if (webhook) await recordWebhook(tx, job.projectId, webhook, toJobWebhookData(job));
  return job;
}

export function eventRow(job: Pick<FineTuningJob, 'id' | 'projectId'>, e: NewEvent): Prisma.JobEventCreateManyInput {
  return {
    id: newId.event(),
    jobId: job.id,
    projectId: job.projectId,
    level: e.level ?? 'info',
    type: e.type ?? 'message',
    message: e.message,
    data: e.data,
    sourceKey: e.sourceKey,
  };
}
