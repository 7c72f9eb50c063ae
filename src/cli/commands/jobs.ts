import { Command, Context, num, str } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { Result, table } from '../output';
import { Progress } from '../progress';
import { readSse } from '../sse';

interface Job {
  id: string;
  status: string;
  model: string;
  fine_tuned_model: string | null;
  error: { code: string; message: string } | null;
  estimated_cost?: unknown;
}
interface JobEvent {
  level: string;
  message: string;
  type: string;
  data: { step?: number; total_steps?: number; train_loss?: number; valid_loss?: number } | null;
}

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

/**
 * Follows a job's event stream (server-sent events) to its end: a progress bar with the latest loss, or every
 * event as a line with --follow; reconnects with Last-Event-ID if the connection drops.
 */
async function follow(ctx: Context, id: string, printEvents: boolean): Promise<Job> {
  const progress = new Progress(id, ctx.json || printEvents);
  let lastId: string | null = null;
  let loss = '';
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await ctx.api.send('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}/events/stream`, {
        headers: ctx.api.headers({ accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }),
      });
      for await (const msg of readSse(res.body!)) {
        if (msg.id) lastId = msg.id;
        if (msg.event === 'done') return ctx.api.json<Job>('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}`);
        const e = msg.data as JobEvent;
        if (printEvents && !ctx.json) process.stdout.write(`${e.level.padEnd(5)} ${e.message}\n`);
        if (e.type === 'metrics' && e.data?.step !== undefined) {
          loss = `step ${e.data.step}/${e.data.total_steps} loss ${e.data.train_loss?.toFixed(4)}${e.data.valid_loss !== undefined ? ` (valid ${e.data.valid_loss.toFixed(4)})` : ''}`;
          progress.update(e.data.step, e.data.total_steps ?? null, loss);
        } else progress.update(0, null, e.message);
      }
    } catch (err) {
      if (err instanceof CliError && err.exitCode !== EXIT.unreachable) throw err;
      if (attempt >= 5) throw err;
    }
    // The stream ended without `done` (a proxy or a restarting api): resume after the last event seen.
    const job = await ctx.api.json<Job>('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}`);
    if (TERMINAL.includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 10_000)));
  }
}

function finished(job: Job, ctx: Context): Result {
  const ok = job.status === 'succeeded';
  process.stderr.write(ok ? `${job.id} succeeded: ${job.fine_tuned_model}\n` : `${job.id} ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ''}\n`);
  return { json: job, text: ok ? String(job.fine_tuned_model) : `${job.id} ${job.status}`, exitCode: ok ? EXIT.ok : EXIT.jobFailed };
}

export const jobCommands: Command[] = [
  {
    name: 'jobs create',
    summary: 'Start a fine-tuning job; --wait follows it with a progress bar and exits 3 if it fails',
    options: {
      model: { type: 'string' }, 'training-file': { type: 'string' }, 'validation-file': { type: 'string' }, suffix: { type: 'string' },
      epochs: { type: 'string' }, 'lora-r': { type: 'string' }, 'lora-alpha': { type: 'string' }, seed: { type: 'string' },
      'idempotency-key': { type: 'string' }, wait: { type: 'boolean' },
    },
    async run(ctx, _p, v) {
      if (!str(v.model) || !str(v['training-file'])) throw new CliError('jobs create needs --model and --training-file', EXIT.badInput);
      const r = num(v['lora-r'], 'lora-r');
      const alpha = num(v['lora-alpha'], 'lora-alpha');
      const body = {
        model: str(v.model),
        training_file: str(v['training-file']),
        ...(str(v['validation-file']) ? { validation_file: str(v['validation-file']) } : {}),
        ...(str(v.suffix) ? { suffix: str(v.suffix) } : {}),
        ...(num(v.seed, 'seed') !== undefined ? { seed: num(v.seed, 'seed') } : {}),
        ...(num(v.epochs, 'epochs') !== undefined ? { method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: num(v.epochs, 'epochs') } } } } : {}),
        ...(r !== undefined || alpha !== undefined ? { lora: { ...(r !== undefined ? { r } : {}), ...(alpha !== undefined ? { alpha } : {}) } } : {}),
      };
      const res = await ctx.api.send('POST', '/fine_tuning/jobs', {
        headers: ctx.api.headers({ 'content-type': 'application/json', ...(str(v['idempotency-key']) ? { 'idempotency-key': str(v['idempotency-key'])! } : {}) }),
        body: JSON.stringify(body),
      });
      const job = (await res.json()) as Job;
      if (!v.wait) return { json: job, text: `${job.id} ${job.status}` };
      if (!ctx.json) process.stderr.write(`${job.id} created (${job.model}); following it\n`);
      return finished(await follow(ctx, job.id, false), ctx);
    },
  },
  {
    name: 'jobs wait',
    args: '<job-id>',
    summary: 'Follow a job to its end with a progress bar; exits 3 if it fails',
    async run(ctx, [id]) {
      if (!id) throw new CliError('jobs wait needs a job id', EXIT.badInput);
      return finished(await follow(ctx, id, false), ctx);
    },
  },
  {
    name: 'jobs events',
    args: '<job-id>',
    summary: "A job's events (newest first); --follow streams them live until the job ends",
    options: { follow: { type: 'boolean' } },
    async run(ctx, [id], v) {
      if (!id) throw new CliError('jobs events needs a job id', EXIT.badInput);
      if (v.follow) return finished(await follow(ctx, id, true), ctx);
      const page = await ctx.api.json<{ data: JobEvent[] }>('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}/events?limit=100`);
      return { json: page, text: page.data.map((e) => `${e.level.padEnd(5)} ${e.message}`).join('\n') };
    },
  },
  {
    name: 'jobs get',
    args: '<job-id>',
    summary: 'One job',
    async run(ctx, [id]) {
      if (!id) throw new CliError('jobs get needs a job id', EXIT.badInput);
      const job = await ctx.api.json<Job>('GET', `/fine_tuning/jobs/${encodeURIComponent(id)}`);
      return { json: job, text: JSON.stringify(job, null, 2) };
    },
  },
  {
    name: 'jobs list',
    summary: "The project's jobs, newest first",
    async run(ctx) {
      const page = await ctx.api.json<{ data: Record<string, unknown>[] }>('GET', '/fine_tuning/jobs?limit=100');
      return { json: page, text: table(page.data, ['id', 'model', 'status', 'fine_tuned_model']) };
    },
  },
  {
    name: 'jobs cancel',
    args: '<job-id>',
    summary: 'Cancel a job (its container is stopped within the grace period)',
    async run(ctx, [id]) {
      if (!id) throw new CliError('jobs cancel needs a job id', EXIT.badInput);
      const job = await ctx.api.json<Job>('POST', `/fine_tuning/jobs/${encodeURIComponent(id)}/cancel`);
      return { json: job, text: `${job.id} ${job.status}` };
    },
  },
];
