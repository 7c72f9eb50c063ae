import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, Context, str } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { table } from '../output';
import { formatBytes, Progress } from '../progress';
import type { Reply } from '../api-types';

/** The dry run's report; a dataset keeps the same errors (its `report`). */
type Validation = Reply<'/v1/datasets/validate', 'post'>;
type Dataset = Reply<'/v1/datasets', 'post'>;

/**
 * Streams a file as multipart/form-data (field `file`, after the form `fields`), reporting bytes sent; nothing is
 * read whole into memory.
 */
export async function postFile<T>(ctx: Context, route: string, file: string, label: string, fields: Record<string, string> = {}): Promise<T> {
  const size = fs.statSync(file).size;
  const boundary = `----loraplane${randomBytes(12).toString('hex')}`;
  const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('');
  const head = Buffer.from(`${parts}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${path.basename(file).replace(/"/g, '')}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const progress = new Progress(label, ctx.json);
  const t0 = Date.now();
  let sent = 0;
  const stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(head);
      for await (const chunk of stream) {
        controller.enqueue(chunk as Buffer);
        sent += (chunk as Buffer).length;
        const secs = (Date.now() - t0) / 1000;
        progress.update(sent, size, `${formatBytes(sent)} / ${formatBytes(size)}${secs > 0 ? `, ${formatBytes(sent / secs)}/s` : ''}`);
      }
      controller.enqueue(tail);
      controller.close();
    },
  });
  const res = await ctx.api.send('POST', route, {
    headers: ctx.api.headers({ 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) }),
    body,
    duplex: 'half',
  });
  const secs = Math.max((Date.now() - t0) / 1000, 0.001);
  progress.done(`${label}: ${formatBytes(size)} in ${secs.toFixed(1)} s (${formatBytes(size / secs)}/s)`);
  return (await res.json()) as T;
}

function describeErrors(report: Pick<Validation, 'errors' | 'error_count'>): string {
  const lines = report.errors.map((e) => `  line ${e.line ?? '-'}${e.path ? `, ${e.path}` : ''}: ${e.message} [${e.code}]`);
  const more = report.error_count > report.errors.length ? [`  ... and ${report.error_count - report.errors.length} more`] : [];
  return [`${report.error_count} error(s):`, ...lines, ...more].join('\n');
}

export const datasetCommands: Command[] = [
  {
    name: 'datasets upload',
    args: '<file.jsonl>',
    summary: 'Upload a dataset (streamed, with progress); an invalid one is kept as invalid and its errors listed',
    options: { format: { type: 'string' }, purpose: { type: 'string' } },
    async run(ctx, [file], v) {
      if (!file) throw new CliError('datasets upload needs a file', EXIT.badInput);
      const query = new URLSearchParams({ ...(str(v.format) ? { format: str(v.format)! } : {}), ...(str(v.purpose) ? { purpose: str(v.purpose)! } : {}) });
      const d = await postFile<Dataset>(ctx, `/datasets${query.size ? `?${query}` : ''}`, file, 'uploading');
      const invalid = d.status === 'invalid';
      // The detected format is in the stats (the stored report has none: this said 'unknown format' for every file).
      const text = invalid && d.report ? `${d.id} is INVALID (${d.stats?.format ?? 'unknown format'})\n${describeErrors(d.report)}` : `${d.id} ${d.status} (${d.format}, ${d.bytes} bytes, sha256 ${d.sha256.slice(0, 12)}...)`;
      return { json: d, text, exitCode: invalid ? EXIT.badInput : EXIT.ok };
    },
  },
  {
    name: 'datasets validate',
    args: '<file.jsonl>',
    summary: 'Dry run: validate a file and print every error by line; stores nothing',
    options: { format: { type: 'string' } },
    async run(ctx, [file], v) {
      if (!file) throw new CliError('datasets validate needs a file', EXIT.badInput);
      const report = await postFile<Validation>(ctx, `/datasets/validate${str(v.format) ? `?format=${encodeURIComponent(str(v.format)!)}` : ''}`, file, 'validating');
      const text = report.valid ? `valid ${report.format} dataset: ${report.stats.examples} examples` : describeErrors(report);
      return { json: report, text, exitCode: report.valid ? EXIT.ok : EXIT.badInput };
    },
  },
  {
    name: 'datasets list',
    summary: "The project's datasets, newest first",
    async run(ctx) {
      const page = await ctx.api.json<Reply<'/v1/datasets'>>('GET', '/datasets?limit=100');
      return { json: page, text: table(page.data, ['id', 'filename', 'status', 'format', 'bytes']) };
    },
  },
  {
    name: 'datasets get',
    args: '<id>',
    summary: 'One dataset with its report and statistics',
    async run(ctx, [id]) {
      if (!id) throw new CliError('datasets get needs an id', EXIT.badInput);
      const d = await ctx.api.json<Reply<'/v1/datasets/{dataset_id}'>>('GET', `/datasets/${encodeURIComponent(id)}`);
      return { json: d, text: JSON.stringify(d, null, 2) };
    },
  },
];
