import { Injectable } from '@nestjs/common';
import { Readable } from 'node:stream';
import { DomainError } from '../../common/domain-error';
import { Config } from '../../config/config';
import { DatasetsService, StagedUpload } from '../../datasets/datasets.service';
import { EvalSuite } from '../../generated/prisma/client';
import { EvalsService } from '../evals.service';
import { arc, BenchmarkFormat, chat, gsm8k, hellaswag, mmluCsv, mmluHf, Question, subjectOf } from './benchmark-formats';
import { toEvalItem } from './prompt-templates';
import { csvRecords, jsonlRecords } from './record-readers';
import { sampleOf } from './suite-sample';

export interface ImportOptions {
  name: string;
  format: BenchmarkFormat;
  /** A uniform sample of this many records (seeded); unset: every record. */
  limit?: number;
  seed: number;
  /** k solved examples from `dev` before each question. */
  shots: number;
  /** The dev file's content, in the same format as the file. */
  dev?: string;
  /** chat only: the scorer (the others follow from the format). */
  scorer?: string;
}

export interface StagedImport {
  staged: StagedUpload;
  options: ImportOptions;
}

const SCORER: Record<Exclude<BenchmarkFormat, 'chat'>, string> = { mmlu: 'multiple_choice', arc: 'multiple_choice', hellaswag: 'multiple_choice', gsm8k: 'numeric' };

/**
 * Imports a benchmark file as an eval suite: the records are read as they stream in, turned into eval items
 * (prompt-templates.ts), sampled when asked, and streamed as an eval-format dataset to S3 through the same ingest as
 * any upload (hashed, validated line by line); then the suite is created on it. Nothing holds the whole file; a
 * sample holds `limit` records.
 */
@Injectable()
export class SuiteImporter {
  constructor(private readonly datasets: DatasetsService, private readonly evals: EvalsService, private readonly config: Config) {}

  async stage(projectId: string, filename: string, body: Readable, options: ImportOptions): Promise<StagedImport> {
    await this.evals.assertSuiteNameFree(projectId, options.name);
    const cap = this.config.env.EVAL_SUITE_MAX_ITEMS;
    if (options.limit !== undefined && options.limit > cap) throw new DomainError('invalid_request', `'limit' is over the cap of ${cap} items a suite may hold`, 'limit');
    if (options.format === 'chat' && options.shots > 0) throw new DomainError('invalid_request', "'shots' does not apply to chat items (put the examples in their messages)", 'shots');
    if (options.format !== 'chat' && options.scorer !== undefined) throw new DomainError('invalid_request', `the scorer of a ${options.format} suite follows from its format; 'scorer' is for chat`, 'scorer');
    const shots = await this.shots(filename, options);
    const maxRecord = this.config.env.MAX_LINE_BYTES;
    const all = questions(options.format, filename, body, maxRecord);
    const chosen = options.limit === undefined ? capped(all, cap) : sampleOf(all, options.limit, options.seed);
    const lines = Readable.from(itemLines(options.format, chosen, shots));
    const ingest = this.datasets.ingestOptions('eval', { minExamples: 1 });
    try {
      return { staged: await this.datasets.stage(projectId, `${options.name}.${options.format}.jsonl`, lines, ingest), options };
    } finally {
      lines.destroy();
    }
  }

  discard(s: StagedImport): Promise<void> {
    return this.datasets.discard(s.staged);
  }

  /** Registers the converted dataset (refused if any item failed validation) and creates the suite on it. */
  async finish(projectId: string, s: StagedImport): Promise<EvalSuite> {
    const dataset = await this.datasets.commit(s.staged, 'evals');
    const scorer = s.options.format === 'chat' ? (s.options.scorer ?? 'exact_match') : SCORER[s.options.format];
    return this.evals.createSuite(projectId, { name: s.options.name, datasetId: dataset.id, scorer });
  }

  private async shots(filename: string, options: ImportOptions): Promise<Question[]> {
    if (options.shots === 0) {
      if (options.dev !== undefined) throw new DomainError('invalid_request', "'dev' is given but 'shots' is 0", 'shots');
      return [];
    }
    if (options.dev === undefined) throw new DomainError('invalid_request', `'shots' = ${options.shots} needs 'dev': the dev file whose first ${options.shots} records are the examples`, 'dev');
    const out: Question[] = [];
    try {
      // MMLU's dev file is the same subject's: its header names the test file's subject.
      for await (const q of questions(options.format, filename, Readable.from([Buffer.from(options.dev)]), this.config.env.MAX_LINE_BYTES)) {
        out.push(q);
        if (out.length === options.shots) break;
      }
    } catch (err) {
      if (err instanceof DomainError) throw new DomainError('invalid_request', `dev: ${err.message}`, `dev${err.param?.replace(/^file/, '') ?? ''}`, { cause: err });
      throw err;
    }
    if (out.length < options.shots) throw new DomainError('invalid_request', `'dev' has ${out.length} records, fewer than 'shots' (${options.shots})`, 'shots');
    return out;
  }
}

/** The file's questions in order. MMLU comes as the release's CSV or as Hugging Face JSONL: the first byte tells. */
export async function* questions(format: BenchmarkFormat, filename: string, body: Readable, maxRecord: number): AsyncGenerator<Question> {
  if (format === 'mmlu') {
    const { first, stream } = await sniff(body);
    if (first === '{') for await (const r of jsonlRecords(stream, maxRecord)) yield mmluHf(r);
    else for await (const r of csvRecords(stream, maxRecord)) yield mmluCsv(r, subjectOf(filename));
    return;
  }
  const parse = { gsm8k, arc, hellaswag, chat }[format];
  for await (const r of jsonlRecords(body, maxRecord)) yield parse(r);
}

async function* capped<T>(records: AsyncIterable<T>, cap: number): AsyncGenerator<T> {
  let n = 0;
  for await (const r of records) {
    if (++n > cap) throw new DomainError('invalid_request', `the file has more than ${cap} records, the most a suite may hold (EVAL_SUITE_MAX_ITEMS); import a sample with 'limit'`, 'limit');
    yield r;
  }
}

export async function* itemLines(format: BenchmarkFormat, qs: AsyncIterable<Question>, shots: Question[]): AsyncGenerator<Buffer> {
  for await (const q of qs) yield Buffer.from(`${JSON.stringify(toEvalItem(format, q, shots))}\n`);
}

/** The first non-blank character of a stream, and a stream that still yields every byte. */
async function sniff(body: Readable): Promise<{ first: string; stream: Readable }> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let first = '';
  while (first === '') {
    const next = await it.next();
    if (next.done) break;
    head.push(next.value);
    first = Buffer.concat(head).toString('utf8').replace(/^[\uFEFF\s]+/u, '').charAt(0);
  }
  async function* rest() {
    yield* head;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { first, stream: Readable.from(rest()) };
}
