import { Controller, Get } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { ApiDoc, ZQuery } from '../common/http/zod-validation';
import { USAGE_GROUPS, UsageGroup, UsageRow, UsageService } from './usage.service';

/** An instant as unix seconds (OpenAI's usage API) or an ISO 8601 date/time. */
const instant = z.string().transform((v, ctx) => {
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'unix seconds or an ISO 8601 date/time' });
    return z.NEVER;
  }
  return new Date(ms);
});
const usageQuery = z
  .object({
    start: instant,
    end: instant.optional(),
    group_by: z
      .string()
      .transform((v, ctx) => {
        const groups = v.split(',').map((g) => g.trim()).filter((g) => g !== '');
        const bad = groups.filter((g) => !(USAGE_GROUPS as readonly string[]).includes(g));
        if (bad.length) ctx.addIssue({ code: 'custom', message: `unknown group ${bad.map((g) => `'${g}'`).join(', ')}: use ${USAGE_GROUPS.join(', ')}` });
        else if (new Set(groups).size !== groups.length) ctx.addIssue({ code: 'custom', message: 'a group appears twice' });
        return groups as UsageGroup[];
      })
      .optional(),
  })
  .strict()
  .transform((q) => ({ start: q.start, end: q.end ?? new Date(), groupBy: q.group_by ?? [] }))
  .refine((q) => q.start < q.end, { message: 'start must be before end', path: ['start'] });

const unix = (d: Date) => Math.floor(d.getTime() / 1000);
const bucketObject = z.object({
  object: z.literal('usage.bucket'),
  model: z.string().optional(),
  api_key_id: z.string().optional(),
  version: z.string().optional(),
  day: z.string().optional(),
  requests: z.number(),
  errors: z.number(),
  input_tokens: z.number(),
  output_tokens: z.number(),
  total_tokens: z.number(),
  avg_latency_ms: z.number().nullable(),
});
/** Documented, so the dashboard and the CLI read it through the generated types. */
const usageObject = z.object({
  object: z.literal('list'),
  start: z.number(),
  end: z.number(),
  group_by: z.array(z.enum(USAGE_GROUPS)),
  data: z.array(bucketObject),
  totals: bucketObject.optional().describe('over the whole range; absent when nothing was served'),
  has_more: z.boolean(),
});

const rowView = (r: UsageRow): z.infer<typeof bucketObject> => ({
  object: 'usage.bucket' as const,
  ...(r.model !== undefined ? { model: r.model } : {}),
  ...(r.apiKeyId !== undefined ? { api_key_id: r.apiKeyId } : {}),
  ...(r.version !== undefined ? { version: r.version } : {}),
  ...(r.day !== undefined ? { day: r.day } : {}),
  requests: r.requests,
  errors: r.errors,
  input_tokens: r.inputTokens,
  output_tokens: r.outputTokens,
  total_tokens: r.inputTokens + r.outputTokens,
  avg_latency_ms: r.requests ? Math.round((r.latencyMsSum / r.requests) * 10) / 10 : null,
});

/** What the gateway served the calling project, from the usage it flushes to Postgres (minute resolution). */
@Controller('v1/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  @ApiDoc({ summary: 'Gateway usage between start and end (unix seconds or ISO), grouped by model, key, version and/or day', tags: ['usage'], response: usageObject })
  async get(@ProjectId() projectId: string, @ZQuery(usageQuery) q: z.infer<typeof usageQuery>): Promise<z.infer<typeof usageObject>> {
    const [rows, [totals]] = await Promise.all([this.usage.usage(projectId, q), q.groupBy.length ? this.usage.usage(projectId, { ...q, groupBy: [] }) : Promise.resolve([] as UsageRow[])]);
    const data = rows.map(rowView);
    return { object: 'list' as const, start: unix(q.start), end: unix(q.end), group_by: q.groupBy, data, totals: totals ? rowView(totals) : data[0], has_more: false };
  }
}
