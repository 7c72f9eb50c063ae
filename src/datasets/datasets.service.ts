import { Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { afterRow, PageQuery } from '../common/http/pagination';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Quotas } from '../projects/quotas';
import { Dataset, Prisma } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { ModelCatalog } from '../training/model-catalog';
import { IngestOptions, ingest } from './dataset-ingest';
import { DatasetsQueue } from './datasets.queue';
import { DatasetFormat, describeError, ValidationReport } from './validation/dataset-validator';

/** An upload that is in S3 and validated but not yet registered. */
export interface StagedUpload {
  fileId: string;
  projectId: string;
  filename: string;
  key: string;
  bytes: number;
  sha256: string;
  report: ValidationReport;
}

export const FILE_PURPOSES = ['fine-tune', 'batch', 'assistants', 'vision', 'user_data', 'evals'] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];

const ACTIVE_JOB_STATUSES = ['validating_files', 'queued', 'running'] as const;
/** Errors kept in a report; all are counted. */
const REPORT_ERRORS = 100;

export interface DatasetStats {
  examples: number;
  lines: number;
  format: DatasetFormat | null;
  role_counts: Record<string, number>;
  tokens: ValidationReport['tokens'];
  /** True until the worker has counted the tokens of a file larger than TOKENIZE_INLINE_BYTES. */
  tokens_pending: boolean;
  /** The longest assistant answer in UTF-8 bytes and its line (absent in datasets validated before it existed). */
  longest_answer?: ValidationReport['longestAnswer'];
}

export interface StoredReport {
  valid: boolean;
  error_count: number;
  errors: ValidationReport['errors'];
}

export function toStats(r: ValidationReport): DatasetStats {
  return { examples: r.examples, lines: r.lines, format: r.format, role_counts: r.roleCounts, tokens: r.tokens, tokens_pending: r.tokensDeferred, longest_answer: r.longestAnswer };
}

export function toStoredReport(r: ValidationReport): StoredReport {
  return { valid: r.valid, error_count: r.errorCount, errors: r.errors };
}

/** How the datasets of one project are stored in S3; uploads and splits stage under the same prefix. */
export const datasetKey = (projectId: string, fileId: string) => `projects/${projectId}/files/${fileId}.jsonl`;

/** What a multipart request adds to its file at most, for an ordinary client (boundaries, part headers, `purpose`). */
const MULTIPART_ENVELOPE_BYTES = 64 * 1024;

/**
 * Datasets: immutable JSONL files, content-addressed per project. Bytes stream to S3 while they are hashed and
 * validated line by line, so neither memory nor local disk ever holds a whole file.
 */
@Injectable()
export class DatasetsService {
  private readonly logger = new Logger(DatasetsService.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: ObjectStore,
    private readonly config: Config,
    private readonly catalog: ModelCatalog,
    private readonly queue: DatasetsQueue,
    private readonly quotas: Quotas,
  ) {}

  /**
   * Datasets are not tied to a model at upload, so the length check uses the largest context of the catalog (an
   * example no model can take is an error); stats.tokens.max_example lets a job for a shorter-context model refuse
   * the file at creation.
   */
  ingestOptions(declaredFormat?: DatasetFormat, overrides: Partial<IngestOptions> = {}): IngestOptions {
    const env = this.config.env;
    return {
      minExamples: env.MIN_TRAINING_EXAMPLES,
      maxErrors: REPORT_ERRORS,
      declaredFormat,
      maxExampleTokens: Math.max(...this.catalog.all().map((m) => m.contextLength)),
      tokenBudgetBytes: env.TOKENIZE_INLINE_BYTES,
      maxLineBytes: env.MAX_LINE_BYTES,
      maxBytes: env.MAX_UPLOAD_BYTES,
      ...overrides,
    };
  }

  /**
   * Ingest options for a multipart upload whose request is `contentLength` bytes long. A file past
   * TOKENIZE_INLINE_BYTES has its tokens counted by the worker after registration, and whatever the ingest counted of
   * its first bytes is dropped; when the request's length alone shows the file is past the budget (the form fields
   * and part headers of an ordinary client take well under MULTIPART_ENVELOPE_BYTES), that counting is not done at
   * all. A request made long by something else (a second file part, which is ignored) only leaves the count to the
   * worker, which gives the same numbers.
   */
  uploadOptions(declaredFormat: DatasetFormat | undefined, contentLength: string | undefined, overrides: Partial<IngestOptions> = {}): IngestOptions {
    const budget = this.config.env.TOKENIZE_INLINE_BYTES;
    const length = Number(contentLength);
    const pastBudget = contentLength !== undefined && Number.isSafeInteger(length) && length > budget + MULTIPART_ENVELOPE_BYTES;
    return this.ingestOptions(declaredFormat, { ...(pastBudget ? { tokenBudgetBytes: 0 } : {}), ...overrides });
  }

  /** Streams `body` to S3 under a fresh id while hashing and validating; nothing is registered yet. */
  async stage(projectId: string, filename: string, body: Readable, options: IngestOptions = this.ingestOptions()): Promise<StagedUpload> {
    const fileId = newId.file();
    const key = datasetKey(projectId, fileId);
    try {
      const result = await ingest(body, options, (stream) => this.store.put(key, stream, 'application/jsonl'));
      return { fileId, projectId, filename, key, ...result };
    } catch (err) {
      await this.removeQuietly(key);
      throw err;
    }
  }

  /** Dry run: the same checks and statistics as an upload, and nothing stored anywhere. */
  async validate(body: Readable, declaredFormat?: DatasetFormat): Promise<{ bytes: number; sha256: string; report: ValidationReport }> {
    // A dry run answers in the request, so it always counts tokens.
    return ingest(body, this.ingestOptions(declaredFormat, { tokenBudgetBytes: Number.POSITIVE_INFINITY }), null);
  }

  /** Drops a staged upload that will not be registered (bad purpose, rejected content, client went away). */
  async discard(staged: StagedUpload): Promise<void> {
    await this.removeQuietly(staged.key);
  }

  /**
   * Registers a staged upload for OpenAI's file facade: invalid content is rejected (the facade never stores a bad
   * training file); identical bytes return the project's existing dataset and the new copy is dropped.
   */
  async commit(staged: StagedUpload, purpose: FilePurpose): Promise<Dataset> {
    if (!staged.report.valid) {
      await this.discard(staged);
      throw invalidFileError(staged.filename, staged.report);
    }
    return this.register(staged, purpose);
  }

  /** Registers a staged upload for the native API: an invalid file is kept as an `invalid` dataset with its report. */
  async register(staged: StagedUpload, purpose: FilePurpose): Promise<Dataset> {
    const { report } = staged;
    // Identical bytes already kept take no more room; anything new counts against the project's stored bytes.
    const twin = await this.prisma.dataset.findUnique({ where: { projectId_sha256: { projectId: staged.projectId, sha256: staged.sha256 } } });
    if (!twin || twin.deletedAt) {
      await this.quotas.assertStoredBytes(staged.projectId, staged.bytes, 'file').catch(async (err: unknown) => {
        await this.discard(staged);
        throw err;
      });
    }
    let created: Dataset;
    try {
      created = await this.prisma.dataset.create({
        data: {
          id: staged.fileId,
          projectId: staged.projectId,
          filename: staged.filename,
          purpose,
          bytes: BigInt(staged.bytes),
          sha256: staged.sha256,
          s3Key: staged.key,
          format: report.format ?? 'chat',
          status: report.valid ? 'ready' : 'invalid',
          stats: toStats(report) as unknown as Prisma.InputJsonValue,
          report: toStoredReport(report) as unknown as Prisma.InputJsonValue,
        },
      });
    } catch (err) {
      if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002')) {
        await this.discard(staged);
        throw err;
      }
      // Same bytes already in this project: one dataset, one copy in S3. A soft-deleted twin comes back to life.
      await this.discard(staged);
      const existing = await this.prisma.dataset.update({
        where: { projectId_sha256: { projectId: staged.projectId, sha256: staged.sha256 } },
        data: { deletedAt: null },
      });
      this.logger.log(`upload of ${staged.filename} matches ${existing.id}; returning it`);
      return existing;
    }
    // Were the queue down now, the worker re-enqueues pending counts from Postgres at its next start.
    if (report.tokensDeferred && report.valid) {
      await this.queue.enqueue('dataset.count_tokens', { datasetId: created.id }).catch((err: unknown) => {
        this.logger.warn({ err, datasetId: created.id }, 'could not enqueue the token count; the worker picks it up at start');
      });
    }
    return created;
  }

  async get(projectId: string, id: string): Promise<Dataset> {
    const row = await this.prisma.dataset.findFirst({ where: { id, projectId, deletedAt: null } });
    if (!row) throw notFound('file', id, 'file_id');
    return row;
  }

  async list(projectId: string, page: PageQuery & { order: 'asc' | 'desc'; purpose?: string }): Promise<Dataset[]> {
    const where: Prisma.DatasetWhereInput = { projectId, deletedAt: null, purpose: page.purpose };
    if (page.after) {
      const cursor = await this.prisma.dataset.findFirst({ where: { id: page.after, projectId }, select: { createdAt: true, id: true } });
      if (!cursor) throw notFound('file', page.after, 'after');
      where.OR = afterRow(cursor, page.order).OR;
    }
    return this.prisma.dataset.findMany({
      where,
      orderBy: [{ createdAt: page.order }, { id: page.order }],
      take: page.limit + 1,
    });
  }

  async content(projectId: string, id: string): Promise<{ dataset: Dataset; body: Readable }> {
    const dataset = await this.get(projectId, id);
    const body = await this.store.get(dataset.s3Key);
    if (!body) throw new DomainError('internal', `The content of ${id} is missing from object storage`);
    return { dataset, body };
  }

  /** Soft delete: the bytes stay (jobs and adapters keep their lineage); a file in use by a live job cannot go. */
  async remove(projectId: string, id: string): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "Dataset" WHERE id = ${id} AND "projectId" = ${projectId} AND "deletedAt" IS NULL FOR UPDATE`;
      if (rows.length === 0) throw notFound('file', id, 'file_id');
      const jobs = await tx.fineTuningJob.findMany({
        where: { projectId, status: { in: [...ACTIVE_JOB_STATUSES] }, OR: [{ trainingFileId: id }, { validationFileId: id }] },
        select: { id: true },
      });
      if (jobs.length > 0) {
        throw new DomainError('dataset_in_use', `File ${id} is used by active fine-tuning jobs: ${jobs.map((j) => j.id).join(', ')}`, 'file_id', {
          details: { job_ids: jobs.map((j) => j.id) },
        });
      }
      await tx.dataset.update({ where: { id }, data: { deletedAt: new Date() } });
    });
  }

  /**
   * Counts the tokens of a dataset registered with tokens_pending by reading it back from S3 (the worker's job, off
   * the upload's path). Safe to run twice: it recomputes and overwrites the same numbers.
   */
  async countTokens(datasetId: string): Promise<void> {
    const dataset = await this.prisma.dataset.findUnique({ where: { id: datasetId } });
    if (!dataset) return;
    const stats = dataset.stats as unknown as DatasetStats | null;
    if (!stats?.tokens_pending) return;
    const body = await this.store.get(dataset.s3Key);
    if (!body) throw new DomainError('internal', `The content of ${datasetId} is missing from object storage`);
    const options = this.ingestOptions(undefined, { tokenBudgetBytes: Number.POSITIVE_INFINITY, maxBytes: Number.MAX_SAFE_INTEGER });
    const { report } = await ingest(body, options, null);
    await this.prisma.dataset.update({
      where: { id: datasetId },
      data: { stats: { ...stats, tokens: report.tokens, tokens_pending: false } as unknown as Prisma.InputJsonValue },
    });
  }

  /** Ids of datasets whose token statistics are still to be counted (the worker picks them up at start). */
  async pendingTokenCounts(): Promise<string[]> {
    const rows = await this.prisma.dataset.findMany({
      where: { deletedAt: null, stats: { path: ['tokens_pending'], equals: true } },
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }

  async removeQuietly(key: string) {
    try {
      await this.store.delete([key]);
    } catch (err) {
      // Orphans are preferable to masking the original failure; a sweeper can find them by prefix.
      this.logger.warn({ err, key }, 'could not delete a staged upload');
    }
  }
}

/** A 400 naming the first error's line and field, with the first errors and the count in the envelope. */
export function invalidFileError(filename: string, report: ValidationReport): DomainError {
  const first = report.errors[0];
  const more = report.errorCount > 1 ? ` (${report.errorCount - 1} more errors; first ones listed in 'errors')` : '';
  return new DomainError('invalid_file', `Invalid file '${filename}': ${describeError(first)}${more}`, 'file', {
    details: { errors: report.errors.slice(0, 20), error_count: report.errorCount },
  });
}
