import fs from 'node:fs';
import { Command, Context, num, str, Values } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { Result, table } from '../output';
import { Progress } from '../progress';
import { postFile } from './datasets';
import type { Body, Reply } from '../api-types';

/** As the OpenAPI document describes them (web/src/api/openapi.d.ts). */
type Run = Reply<'/v1/evals/runs/{run_id}'>;
type Comparison = Reply<'/v1/evals/comparisons/{comparison_id}'>;

const need = (v: string | undefined, what: string) => {
  if (!v) throw new CliError(`missing ${what}`, EXIT.badInput);
  return encodeURIComponent(v);
};
const asList = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : []);

async function report(ctx: Context, runId: string, format: string): Promise<string> {
  const res = await ctx.api.send('GET', `/evals/runs/${encodeURIComponent(runId)}/report?format=${encodeURIComponent(format)}`, { headers: ctx.api.headers() });
  return res.text();
}

/** Follows a run to its end with a progress bar (items scored over all targets). */
async function waitForRun(ctx: Context, id: string): Promise<Run> {
  const progress = new Progress(id, ctx.json);
  for (;;) {
    const run = await ctx.api.json<Run>('GET', `/evals/runs/${encodeURIComponent(id)}`);
    if (run.progress) progress.update(run.progress.done, run.progress.total, run.progress.targets.map((t) => `${t.target} ${t.correct}/${t.done}`).join(', '));
    if (!['queued', 'running'].includes(run.status)) {
      progress.done(`${id} ${run.status}`);
      return run;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function comparisonReport(ctx: Context, ref: string, format: string): Promise<string> {
  const res = await ctx.api.send('GET', `/evals/comparisons/${encodeURIComponent(ref)}/report?format=${encodeURIComponent(format)}`, { headers: ctx.api.headers() });
  return res.text();
}

/** Follows a comparison to its end with a progress bar (items scored over all suites and targets). */
async function waitForComparison(ctx: Context, id: string): Promise<Comparison> {
  const progress = new Progress(id, ctx.json);
  for (;;) {
    const c = await ctx.api.json<Comparison>('GET', `/evals/comparisons/${encodeURIComponent(id)}`);
    if (c.progress) progress.update(c.progress.done, c.progress.total, c.runs.map((r) => `${r.suite.name} ${r.status}`).join(', '));
    if (!['queued', 'running'].includes(c.status)) {
      progress.done(`${c.name} ${c.status}`);
      return c;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * What `... --wait` prints for a comparison just created: without --wait its name, id and status; with it, the
 * comparison followed to its end and its report (--format md|html|json). A comparison that did not succeed is an error.
 */
export async function comparisonResult(ctx: Context, created: { id: string; name: string; status: string }, v: Values, json: unknown = created): Promise<Result> {
  if (!v.wait) return { json, text: `${created.name} ${created.id} ${created.status}` };
  const done = await waitForComparison(ctx, created.id);
  if (done.status !== 'succeeded') throw new CliError(`comparison ${done.name} ${done.status}`, EXIT.error, done);
  const format = str(v.format) ?? 'md';
  const text = await comparisonReport(ctx, done.id, format);
  return { json: format === 'json' ? JSON.parse(text) : { format, report: text }, text: text.replace(/\n$/, '') };
}

/** Eval targets, suites, runs, the comparison, and the promotion gate that uses them. */
export const evalCommands: Command[] = [
  {
    name: 'evals targets create',
    args: '<name>',
    summary: 'A target: --kind api (--model, --base-url; key from LORAPLANE_TARGET_API_KEY), base or adapter (--pool, --adapter, --version)',
    options: {
      kind: { type: 'string' }, model: { type: 'string' }, 'base-url': { type: 'string' }, pool: { type: 'string' }, adapter: { type: 'string' },
      version: { type: 'string' }, concurrency: { type: 'string' }, stream: { type: 'boolean' }, 'usd-per-gpu-hour': { type: 'string' }, gpus: { type: 'string' },
    },
    async run(ctx, [name], v) {
      // A provider key comes from the environment, never a flag (shell history, process lists).
      const apiKey = ctx.env.LORAPLANE_TARGET_API_KEY;
      const body = Object.fromEntries(Object.entries({
        name, kind: str(v.kind), model: str(v.model), base_url: str(v['base-url']), api_key: str(v.kind) === 'api' ? apiKey : undefined,
        pool: str(v.pool), adapter: str(v.adapter), version: num(v.version, 'version'), concurrency: num(v.concurrency, 'concurrency'),
        stream: v.stream === true ? true : undefined, usd_per_gpu_hour: num(v['usd-per-gpu-hour'], 'usd-per-gpu-hour'), gpus: num(v.gpus, 'gpus'),
      }).filter(([, x]) => x !== undefined));
      const t = await ctx.api.json<Reply<'/v1/evals/targets', 'post'>>('POST', '/evals/targets', body);
      return { json: t, text: `${t.name} (${t.model}) ${t.id}` };
    },
  },
  {
    name: 'evals targets get',
    args: '<name-or-id>',
    summary: 'One target (never its key)',
    async run(ctx, [ref]) {
      const t = await ctx.api.json<Reply<'/v1/evals/targets/{target}'>>('GET', `/evals/targets/${need(ref, 'target')}`);
      return { json: t, text: JSON.stringify(t, null, 2) };
    },
  },
  {
    name: 'evals targets',
    summary: "The project's eval targets",
    async run(ctx) {
      const page = await ctx.api.json<Reply<'/v1/evals/targets'>>('GET', '/evals/targets');
      return { json: page, text: table(page.data, ['name', 'kind', 'model', 'id']) };
    },
  },
  {
    name: 'evals suites create',
    args: '<name>',
    summary: 'A suite from an eval-format dataset (--dataset) and a scorer (--scorer exact_match|multiple_choice|numeric|regex|contains)',
    options: { dataset: { type: 'string' }, scorer: { type: 'string' } },
    async run(ctx, [name], v) {
      const body = { name, dataset_id: str(v.dataset), scorer: str(v.scorer) ?? 'exact_match' } satisfies Partial<Body<'/v1/evals/suites'>>;
      const s = await ctx.api.json<Reply<'/v1/evals/suites', 'post'>>('POST', '/evals/suites', body);
      return { json: s, text: `${s.name} ${s.id}` };
    },
  },
  {
    name: 'evals suites import',
    args: '<name> <file>',
    summary: 'A suite from a benchmark file as published: --format mmlu|gsm8k|arc|hellaswag|chat [--limit N --seed S] [--shots K --dev FILE] [--scorer S: chat]',
    options: { format: { type: 'string' }, limit: { type: 'string' }, seed: { type: 'string' }, shots: { type: 'string' }, dev: { type: 'string' }, scorer: { type: 'string' } },
    async run(ctx, [name, file], v) {
      if (!name || !file || !str(v.format)) throw new CliError('evals suites import needs <name> <file> and --format', EXIT.badInput);
      const fields: Record<string, string> = { name, format: str(v.format)! };
      for (const k of ['limit', 'seed', 'shots', 'scorer'] as const) if (str(v[k]) !== undefined) fields[k] = str(v[k])!;
      if (str(v.dev)) fields.dev = fs.readFileSync(str(v.dev)!, 'utf8');
      const s = await postFile<Reply<'/v1/evals/suites/import', 'post'>>(ctx, '/evals/suites/import', file, 'importing', fields);
      return { json: s, text: `${s.name} ${s.id}: ${s.items} items, scorer ${JSON.stringify(s.scorer)}` };
    },
  },
  {
    name: 'evals run',
    summary: 'Run a suite (--suite) on targets (--target, repeatable; --baseline); --wait follows it and prints the comparison',
    options: { suite: { type: 'string' }, target: { type: 'string', multiple: true }, baseline: { type: 'string' }, wait: { type: 'boolean' } },
    async run(ctx, _p, v) {
      const targets = asList(v.target);
      if (!str(v.suite) || targets.length === 0) throw new CliError('evals run needs --suite and at least one --target', EXIT.badInput);
      const body: Body<'/v1/evals/runs'> = { suite_id: str(v.suite)!, targets, ...(str(v.baseline) ? { baseline: str(v.baseline) } : {}) };
      const created = await ctx.api.json<Reply<'/v1/evals/runs', 'post'>>('POST', '/evals/runs', body);
      if (!v.wait) return { json: created, text: `${created.id} ${created.status}` };
      const run = await waitForRun(ctx, created.id);
      if (run.status !== 'succeeded') throw new CliError(`eval run ${run.id} ${run.status}${run.error ? `: ${run.error.message}` : ''}`, EXIT.error, run);
      return { json: run, text: await report(ctx, run.id, 'md') };
    },
  },
  {
    name: 'evals report',
    args: '<run-id>',
    summary: 'The comparison: --format md (default), html (self-contained page) or json',
    options: { format: { type: 'string' } },
    async run(ctx, [id], v) {
      if (!id) throw new CliError('evals report needs a run id', EXIT.badInput);
      const format = str(v.format) ?? 'md';
      const text = await report(ctx, id, format);
      return { json: format === 'json' ? JSON.parse(text) : { format, report: text }, text: text.replace(/\n$/, '') };
    },
  },
  {
    name: 'evals compare',
    args: '<name>',
    summary: 'Run every --suite (repeatable) on every --target (repeatable; --baseline); --wait follows it and prints the report (--format md|html|json)',
    options: { suite: { type: 'string', multiple: true }, target: { type: 'string', multiple: true }, baseline: { type: 'string' }, wait: { type: 'boolean' }, format: { type: 'string' } },
    async run(ctx, [name], v) {
      const suites = asList(v.suite);
      const targets = asList(v.target);
      if (!name || suites.length === 0 || targets.length === 0) throw new CliError('evals compare needs <name>, at least one --suite and one --target', EXIT.badInput);
      const body: Body<'/v1/evals/comparisons'> = { name, suites, targets, ...(str(v.baseline) ? { baseline: str(v.baseline) } : {}) };
      const created = await ctx.api.json<Reply<'/v1/evals/comparisons', 'post'>>('POST', '/evals/comparisons', body);
      return comparisonResult(ctx, created, v);
    },
  },
  {
    name: 'evals compare report',
    args: '<name-or-id>',
    summary: "A comparison's report: --format md (default), html or json",
    options: { format: { type: 'string' } },
    async run(ctx, [id], v) {
      if (!id) throw new CliError('evals compare report needs a comparison name or id', EXIT.badInput);
      const format = str(v.format) ?? 'md';
      const text = await comparisonReport(ctx, id, format);
      return { json: format === 'json' ? JSON.parse(text) : { format, report: text }, text: text.replace(/\n$/, '') };
    },
  },
  {
    name: 'adapters gate',
    args: '<pool> <adapter>',
    summary: "Require the candidate's latest eval on --suite to beat --baseline by --min-margin before the alias moves",
    options: { suite: { type: 'string' }, baseline: { type: 'string' }, 'min-margin': { type: 'string' } },
    async run(ctx, [pool, adapter], v) {
      const body = { suite_id: str(v.suite), baseline_target: str(v.baseline), min_margin: num(v['min-margin'], 'min-margin') ?? 0 } satisfies Partial<Body<'/v1/serving/pools/{pool}/aliases/{adapter_name}/gate'>>;
      const gate = await ctx.api.json<Reply<'/v1/serving/pools/{pool}/aliases/{adapter_name}/gate', 'post'>>('POST', `/serving/pools/${need(pool, 'pool')}/aliases/${need(adapter, 'adapter')}/gate`, body);
      return { json: gate, text: JSON.stringify(gate, null, 2) };
    },
  },
];
