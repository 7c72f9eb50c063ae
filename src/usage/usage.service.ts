import { Injectable } from '@nestjs/common';
import { PrismaService } from '../db/prisma.service';
import { Prisma } from '../generated/prisma/client';

export const USAGE_GROUPS = ['model', 'key', 'version', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  start: Date;
  end: Date;
  groupBy: UsageGroup[];
}

export interface UsageRow {
  model?: string;
  apiKeyId?: string;
  version?: string;
  day?: string;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  latencyMsSum: number;
}

// Whitelisted SQL per group: the query is assembled from these constants only, never from the request's text.
const COLUMNS: Record<UsageGroup, { sql: Prisma.Sql; as: string }> = {
  model: { sql: Prisma.sql`"model"`, as: 'model' },
  key: { sql: Prisma.sql`"apiKeyId"`, as: 'apiKeyId' },
  version: { sql: Prisma.sql`"resolved"`, as: 'version' },
  day: { sql: Prisma.sql`to_char(date_trunc('day', "minute"), 'YYYY-MM-DD')`, as: 'day' },
};

/** The project's gateway usage between two instants (minute resolution), summed per the requested groups. */
@Injectable()
export class UsageService {
  constructor(private readonly prisma: PrismaService) {}

  async usage(projectId: string, q: UsageQuery): Promise<UsageRow[]> {
    const groups = q.groupBy.map((g) => COLUMNS[g]);
    const select = groups.length ? Prisma.join(groups.map((g) => Prisma.sql`${g.sql} AS "${Prisma.raw(g.as)}", `), '') : Prisma.empty;
    const groupBy = groups.length ? Prisma.sql`GROUP BY ${Prisma.join(groups.map((g) => g.sql))} ORDER BY ${Prisma.join(groups.map((g) => g.sql))}` : Prisma.empty;
    const rows = await this.prisma.$queryRaw<Record<string, unknown>[]>`
      SELECT ${select}
        COALESCE(SUM("requests"), 0)::bigint AS "requests", COALESCE(SUM("errors"), 0)::bigint AS "errors",
        COALESCE(SUM("inputTokens"), 0)::bigint AS "inputTokens", COALESCE(SUM("outputTokens"), 0)::bigint AS "outputTokens",
        COALESCE(SUM("latencyMsSum"), 0)::float8 AS "latencyMsSum"
      FROM "UsageBucket"
      WHERE "projectId" = ${projectId} AND "minute" >= ${q.start} AND "minute" < ${q.end}
      ${groupBy}`;
    return rows.map((r) => ({
      ...Object.fromEntries(groups.map((g) => [g.as, String(r[g.as])])),
      requests: Number(r.requests),
      errors: Number(r.errors),
      inputTokens: Number(r.inputTokens),
      outputTokens: Number(r.outputTokens),
      latencyMsSum: Number(r.latencyMsSum),
    }));
  }
}
