import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { notFound } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { JobsService } from './jobs.service';

/** The metrics line fields (jobs/CONTRACT.md) a history carries, one array each, in the order of the events. */
export const METRIC_COLUMNS = ['epoch', 'train_loss', 'valid_loss', 'learning_rate', 'tokens_per_second'] as const;
type MetricColumn = (typeof METRIC_COLUMNS)[number];

/** A page is capped: 100,000 points are about 5 MB of JSON, read in well under a second. */
export const MAX_METRIC_POINTS = 100_000;

export const metricsQuery = z.object({
  after: z.string().min(1).optional().describe('`last_event_id` of the previous page, while `has_more`'),
  limit: z.coerce.number().int().min(1).max(MAX_METRIC_POINTS).default(MAX_METRIC_POINTS),
});
export type MetricsQuery = z.infer<typeof metricsQuery>;

const column = z.array(z.number().nullable());
export const metricsHistoryObject = z.object({
  object: z.literal('fine_tuning.job.metrics'),
  job_id: z.string(),
  step: z.array(z.number()).describe('x of every point; the other arrays are aligned with it (null: not in that line)'),
  epoch: column,
  train_loss: column,
  valid_loss: column,
  learning_rate: column,
  tokens_per_second: column,
  has_more: z.boolean(),
  last_event_id: z
    .string()
    .nullable()
    .describe('Where this history ends: pass it as `after` for the next page while `has_more`; then as Last-Event-ID to events/stream, which sends exactly the events after it'),
});
export type MetricsHistory = z.infer<typeof metricsHistoryObject>;

type Columns = { step: number[] } & Record<MetricColumn, (number | null)[]>;
type Aggregate = Partial<Columns> & { last_id: string | null; more: boolean };

/**
 * A JSON number of `data` as float4, null when absent or not a number (a trainer may omit any field). float4
 * because trainers compute in float32 (the values are float32s written as doubles): nothing is lost, and the
 * shortest decimal of a float4 halves the JSON.
 */
const numberField = (name: string) => Prisma.raw(`CASE WHEN jsonb_typeof(data->'${name}') = 'number' THEN (data->>'${name}')::float4 END AS "${name}"`);
const columnOf = (name: string) => Prisma.raw(`array_agg("${name}" ORDER BY seq) AS "${name}"`);

/**
 * A job's metric history in columns, read in one query: what a loss chart needs at once, without sending every
 * event object (a 50,000-point job is 50,000 events; as JSON objects over the event stream that took the job page
 * most of a minute). The history ends at a position in the event sequence, so a reader that then follows the
 * live stream from `last_event_id` sees every later event once and none twice.
 */
@Injectable()
export class JobMetricsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly jobs: JobsService,
  ) {}

  async history(projectId: string, jobId: string, query: MetricsQuery): Promise<MetricsHistory> {
    await this.jobs.get(projectId, jobId); // another project's job is not found
    const after = query.after ? await this.seqOf(projectId, jobId, query.after) : 0n;
    // The end of the history: the newest event of any type now. Fixed before the points are read, so an event
    // written in between lies after it and reaches the reader through the stream.
    const [end] = await this.prisma.$queryRaw<{ seq: bigint; id: string }[]>`
      SELECT seq, id FROM "JobEvent" WHERE "jobId" = ${jobId} AND "projectId" = ${projectId} ORDER BY seq DESC LIMIT 1`;
    const page = end ? await this.points(projectId, jobId, after, end.seq, query.limit) : null;
    const hasMore = page?.more ?? false;
    const out: MetricsHistory = {
      object: 'fine_tuning.job.metrics',
      job_id: jobId,
      step: page?.step ?? [],
      epoch: [],
      train_loss: [],
      valid_loss: [],
      learning_rate: [],
      tokens_per_second: [],
      has_more: hasMore,
      last_event_id: hasMore ? page!.last_id : (end?.id ?? query.after ?? null),
    };
    for (const c of METRIC_COLUMNS) out[c] = page?.[c] ?? [];
    return out;
  }

  /**
   * Metrics events in (after, through] that carry a numeric step (a point needs a place on the x axis), as
   * columns built by Postgres: one row comes back, not one per point (that cost most of the time).
   */
  private async points(projectId: string, jobId: string, after: bigint, through: bigint, limit: number): Promise<Aggregate> {
    const where = Prisma.sql`"jobId" = ${jobId} AND "projectId" = ${projectId} AND type = 'metrics' AND seq <= ${through} AND jsonb_typeof(data->'step') = 'number'`;
    // Each field is read out of the JSON once per point, in the scan; the aggregates only collect.
    const [row] = await this.prisma.$queryRaw<Aggregate[]>`
      WITH pts AS (
        SELECT seq, id, (data->>'step')::float8 AS step, ${Prisma.join(METRIC_COLUMNS.map(numberField))}
        FROM "JobEvent" WHERE ${where} AND seq > ${after} ORDER BY seq LIMIT ${limit})
      SELECT (SELECT id FROM pts ORDER BY seq DESC LIMIT 1) AS last_id,
        EXISTS (SELECT 1 FROM "JobEvent" WHERE ${where} AND seq > (SELECT coalesce(max(seq), ${after}) FROM pts)) AS more,
        ${Prisma.join(['step', ...METRIC_COLUMNS].map(columnOf))}
      FROM pts`;
    return row;
  }

  private async seqOf(projectId: string, jobId: string, eventId: string): Promise<bigint> {
    const row = await this.prisma.jobEvent.findFirst({ where: { id: eventId, jobId, projectId }, select: { seq: true } });
    if (!row) throw notFound('event', eventId, 'after');
    return row.seq;
  }
}
