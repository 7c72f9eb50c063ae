import { Command, num, str } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { table } from '../output';
import { comparisonResult } from './evals';
import type { Body, Reply } from '../api-types';

/** As the OpenAPI document describes it (web/src/api/openapi.d.ts). */
type Plan = Reply<'/v1/migrations/openai/plan', 'post'>;

const asList = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : []);

/** Migration from OpenAI fine-tuning. */
export const migrateCommands: Command[] = [
  {
    name: 'migrate openai',
    summary: 'Copy your OpenAI fine-tuning files here and plan the same jobs (--base-model, default gpt-oss-20b; --job, repeatable); a dry run unless --start. Key from OPENAI_API_KEY',
    options: { 'base-model': { type: 'string' }, job: { type: 'string', multiple: true }, start: { type: 'boolean' } },
    async run(ctx, _p, v) {
      // The key comes from the environment, never a flag (shell history, process lists).
      const apiKey = ctx.env.OPENAI_API_KEY;
      if (!apiKey) throw new CliError('migrate openai needs OPENAI_API_KEY in the environment', EXIT.badInput);
      const jobs = asList(v.job);
      const body: Body<'/v1/migrations/openai/plan'> = { api_key: apiKey, ...(str(v['base-model']) ? { base_model: str(v['base-model']) } : {}), ...(jobs.length ? { jobs } : {}) };
      const plan = await ctx.api.json<Plan>('POST', '/migrations/openai/plan', body);
      const rows = plan.jobs.map((j) => ({
        openai_job: j.openai_job.id,
        from: j.openai_job.model,
        training_file: `${j.files.training.file_id} (${j.files.training.status})`,
        method: j.estimate?.method ?? '-',
        gpu_hours: j.estimate?.gpu_hours ?? '-',
        usd: j.estimate?.usd ?? '-',
        note: j.error?.message ?? '',
      }));
      const text = [`Plan on ${plan.base_model} (dry run: nothing started):`, table(rows, ['openai_job', 'from', 'training_file', 'method', 'gpu_hours', 'usd', 'note'])];
      if (!v.start) return { json: plan, text: text.join('\n') };
      const started: { openai_job: string; job: string }[] = [];
      for (const j of plan.jobs) {
        if (!j.create) continue;
        // One idempotency key per OpenAI job: running the migration again never starts a second copy.
        const res = await ctx.api.send('POST', '/fine_tuning/jobs', {
          headers: ctx.api.headers({ 'content-type': 'application/json', 'idempotency-key': `migrate-openai-${j.openai_job.id}` }),
          body: JSON.stringify(j.create),
        });
        const job = (await res.json()) as Reply<'/v1/fine_tuning/jobs', 'post'>;
        started.push({ openai_job: j.openai_job.id, job: job.id });
      }
      return { json: { plan, started }, text: [...text, '', 'Started:', table(started, ['openai_job', 'job'])].join('\n') };
    },
  },
  {
    name: 'migrate openai compare',
    args: '<job>',
    summary:
      "Compare your OpenAI fine-tuned model with the migrated job's deployed adapter on the OpenAI job's validation file (--openai-job, default the job's metadata.migrated_from; --limit N --seed S for a sample); --wait prints the report (--format md|html|json). Key from OPENAI_API_KEY",
    options: { 'openai-job': { type: 'string' }, limit: { type: 'string' }, seed: { type: 'string' }, wait: { type: 'boolean' }, format: { type: 'string' } },
    async run(ctx, [job], v) {
      const apiKey = ctx.env.OPENAI_API_KEY;
      if (!apiKey) throw new CliError('migrate openai compare needs OPENAI_API_KEY in the environment', EXIT.badInput);
      if (!job) throw new CliError('migrate openai compare needs the loraplane job id', EXIT.badInput);
      const body: Body<'/v1/migrations/openai/compare'> = {
        api_key: apiKey,
        job,
        ...(str(v['openai-job']) ? { openai_job: str(v['openai-job']) } : {}),
        ...(num(v.limit, 'limit') !== undefined ? { limit: num(v.limit, 'limit') } : {}),
        ...(num(v.seed, 'seed') !== undefined ? { seed: num(v.seed, 'seed') } : {}),
      };
      const created = await ctx.api.json<Reply<'/v1/migrations/openai/compare', 'post'>>('POST', '/migrations/openai/compare', body);
      return comparisonResult(ctx, created.comparison, v, created);
    },
  },
];
