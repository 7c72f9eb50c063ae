import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { PageQuery } from '../common/http/pagination';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Dataset, Prisma } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { DatasetValidator, describeError, ValidationReport } from './validation/dataset-validator';
import { LineSplitter } from './validation/line-splitter';

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

/**
 * Datasets: immutable JSONL files, content-addressed per project. Bytes stream to S3 while they are hashed and
 * validated line by line, so neither memory nor local disk ever holds a whole file.
 */
@Injectable()
export class DatasetsService {
  private readonly logger = new Logger(DatasetsService.name);

  constructor(private readonly prisma: PrismaService, private readonly store: ObjectStore, private readonly config: Config) {}

  /** Streams `body` to S3 under a fresh id while hashing and validating; nothing is registered yet. */
  async stage(projectId: string, filename: string, body: Readable): Promise<StagedUpload> {
    const fileId = newId.file();
    const key = `projects/${projectId}/files/${fileId}.jsonl`;
    const validator = new DatasetValidator({ minExamples: this.config.env.MIN_TRAINING_EXAMPLES });
    const splitter = new LineSplitter(this.config.env.MAX_LINE_BYTES, validator.onLine);
    const hash = createHash('sha256');
    let bytes = 0;
    const maxBytes = this.config.env.MAX_UPLOAD_BYTES;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done: TransformCallback) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          done(new DomainError('payload_too_large', `The file is larger than the limit of ${maxBytes} bytes`, 'file'));
          return;
        }
        hash.update(chunk);
        splitter.push(chunk);
        done(null, chunk);
      },
      flush(done) {
        splitter.end();
        done();
      },
    });
    try {
      // Both sides must finish: the pipeline ends the tap; the store consumes it.
      await Promise.all([pipeline(body, tap), this.store.put(key, tap, 'application/jsonl')]);
    } catch (err) {
      await this.removeQuietly(key);
      throw err;
    }
    return { fileId, projectId, filename, key, bytes, sha256: hash.digest('hex'), report: validator.report(splitter.lines) };
  }

  /** Drops a staged upload that will not be registered (bad purpose, rejected content, client went away). */
  async discard(staged: StagedUpload): Promise<void> {
    await this.removeQuietly(staged.key);
  }

  /**
   * Registers a staged upload. Invalid content is rejected (OpenAI's file facade never stores a bad training file);
   * identical bytes return the project's existing dataset and the new copy is dropped.
   */
  async commit(staged: StagedUpload, purpose: FilePurpose): Promise<Dataset> {
    const { report } = staged;
    if (!report.valid) {
      await this.discard(staged);
      const first = report.errors[0];
      const more = report.errorCount > 1 ? ` (${report.errorCount - 1} more errors; first ones listed in 'errors')` : '';
      throw new DomainError('invalid_file', `Invalid file '${staged.filename}': ${describeError(first)}${more}`, 'file', {
        details: { errors: report.errors.slice(0, 20), error_count: report.errorCount },
      });
    }
    try {
      return await this.prisma.dataset.create({
        data: {
          id: staged.fileId,
          projectId: staged.projectId,
          filename: staged.filename,
          purpose,
          bytes: BigInt(staged.bytes),
          sha256: staged.sha256,
          s3Key: staged.key,
          format: report.format ?? 'chat',
          status: 'ready',
          stats: { examples: report.examples, lines: report.lines, role_counts: report.roleCounts },
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
      const cmp = page.order === 'asc' ? 'gt' : 'lt';
      where.OR = [{ createdAt: { [cmp]: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { [cmp]: cursor.id } }];
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

  private async removeQuietly(key: string) {
    try {
      await this.store.delete([key]);
    } catch (err) {
      // Orphans are preferable to masking the original failure; a sweeper can find them by prefix.
      this.logger.warn({ err, key }, 'could not delete a staged upload');
    }
  }
}
