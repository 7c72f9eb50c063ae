import { Command, str } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { table } from '../output';
import type { Reply } from '../api-types';

/** As the OpenAPI document describes it (web/src/api/openapi.d.ts). */
type UsagePage = Reply<'/v1/usage'>;
type Column = keyof UsagePage['data'][number] & string;

const GROUP_COLUMNS: Record<string, Column> = { model: 'model', key: 'api_key_id', version: 'version', day: 'day' };
const FIGURES: Column[] = ['requests', 'errors', 'input_tokens', 'output_tokens', 'avg_latency_ms'];

/** `--since 24h` / `7d` / `30m` as a start instant in unix seconds; anything else passes through (ISO or unix). */
export function startOf(since: string, now = Date.now()): string {
  const m = /^(\d+)([mhd])$/.exec(since);
  if (!m) return since;
  const ms = Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  return String(Math.floor((now - ms) / 1000));
}

/** Gateway usage of the project (GET /v1/usage). */
export const usageCommands: Command[] = [
  {
    name: 'usage',
    summary: 'Gateway usage: requests, errors, tokens, latency (--since 24h|7d|ISO|unix, --until, --group-by model,key,version,day)',
    options: { since: { type: 'string' }, until: { type: 'string' }, 'group-by': { type: 'string' } },
    async run(ctx, _args, v) {
      const since = str(v.since) ?? '24h';
      const groupBy = str(v['group-by']) ?? 'model';
      const unknown = groupBy.split(',').filter((g) => g && !(g in GROUP_COLUMNS));
      if (unknown.length) throw new CliError(`--group-by takes model, key, version, day; not ${unknown.join(', ')}`, EXIT.badInput);
      const q = new URLSearchParams({ start: startOf(since), group_by: groupBy });
      const until = str(v.until);
      if (until) q.set('end', until);
      const page = await ctx.api.json<UsagePage>('GET', `/usage?${q}`);
      const columns = [...page.group_by.map((g) => GROUP_COLUMNS[g]), ...FIGURES];
      const totals = { ...page.totals, [columns[0]]: 'TOTAL' };
      return { json: page, text: table([...page.data, totals], columns) };
    },
  },
];
