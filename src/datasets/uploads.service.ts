import { Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError, invalid, notFound } from '../common/domain-error';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Dataset, Prisma, Upload, UploadPart } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { DatasetsService, FilePurpose, invalidFileError } from './datasets.service';

export type UploadWithFile = Upload & { file: Dataset | null };

const uploadId = () => `upload_${randomBytes(12).toString('base64url')}`;
const partId = () => `part_${randomBytes(12).toString('base64url')}`;

/**
 * OpenAI's Uploads API. Each part is streamed to its own S3 object (no part is buffered, any size, any order); a part
 * that failed midway leaves no row and is simply sent again. Complete streams the listed parts in the client's order
 * through the same hash + validate + S3 multipart ingest as /v1/files, registers the dataset and deletes the parts.
 * Postgres and S3 hold all state, so an upload survives a client or server restart until it expires; the worker's
 * sweep deletes the parts of expired uploads by prefix (which also finds a part whose row was never written).
 */
@Injectable()
export class UploadsService {
  private readonly logger = new Logger(UploadsService.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: ObjectStore,
    private readonly config: Config,
    private readonly datasets: DatasetsService,
  ) {}

  async create(projectId: string, input: { bytes: number; filename: string; mimeType: string; purpose: FilePurpose }): Promise<UploadWithFile> {
    const env = this.config.env;
    if (input.bytes > env.UPLOAD_MAX_BYTES) {
      throw new DomainError('invalid_request', `'bytes' is ${input.bytes}; the largest upload is ${env.UPLOAD_MAX_BYTES} bytes`, 'bytes');
    }
    const id = uploadId();
    const row = await this.prisma.upload.create({
      data: {
        id,
        projectId,
        filename: input.filename,
        purpose: input.purpose,
        bytes: BigInt(input.bytes),
        mimeType: input.mimeType,
        status: 'pending',
        s3Prefix: `projects/${projectId}/uploads/${id}/`,
        expiresAt: new Date(Date.now() + env.UPLOAD_TTL_SECONDS * 1000),
      },
    });
    return { ...row, file: null };
  }

  async get(projectId: string, id: string): Promise<UploadWithFile & { parts: UploadPart[] }> {
    const row = await this.prisma.upload.findFirst({ where: { id, projectId }, include: { parts: { orderBy: { createdAt: 'asc' } } } });
    if (!row) throw notFound('upload', id, 'upload_id');
    const file = row.fileId ? await this.prisma.dataset.findFirst({ where: { id: row.fileId, projectId } }) : null;
    return { ...row, file };
  }

  /** Streams one part to S3; only a part that arrived whole gets a row (and an id the client can complete with). */
  async addPart(projectId: string, id: string, body: Readable): Promise<UploadPart> {
    const upload = await this.pending(projectId, id);
    const pid = partId();
    const key = `${upload.s3Prefix}${pid}`;
    const max = this.config.env.UPLOAD_MAX_PART_BYTES;
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, done) {
        bytes += chunk.length;
        if (bytes > max) done(new DomainError('payload_too_large', `A part may be at most ${max} bytes`, 'data'));
        else done(null, chunk);
      },
    });
    try {
      // The pipeline's own error (the client went away, the part is too large) wins over the store's view of it.
      await Promise.all([pipeline(body, counter), this.store.put(key, counter, 'application/octet-stream')]);
      if (bytes === 0) throw invalid('The part is empty', 'data');
      // The upload may have been cancelled, completed or expired while the bytes arrived: the row insert checks.
      return await this.prisma.$transaction(async (tx) => {
        const rows = await tx.$queryRaw<{ status: string; completing: boolean }[]>`SELECT status, completing FROM "Upload" WHERE id = ${id} FOR UPDATE`;
        if (rows[0]?.status !== 'pending' || rows[0].completing) throw notPending(id, rows[0]?.status ?? 'gone');
        return tx.uploadPart.create({ data: { id: pid, uploadId: id, bytes: BigInt(bytes), s3Key: key } });
      });
    } catch (err) {
      await this.removeQuietly([key]);
      throw err;
    }
  }

  /** Undoes addPart when the rest of its request failed (a second file field, a broken multipart body). */
  async removePart(part: UploadPart): Promise<void> {
    await this.prisma.uploadPart.deleteMany({ where: { id: part.id } });
    await this.removeQuietly([part.s3Key]);
  }

  /**
   * Assembles the listed parts in the given order into a dataset. A retried complete returns the same result; a
   * complete whose content is invalid is refused with the file's errors and the upload is cancelled (as /v1/files
   * refuses such a file); a failure of S3 midway leaves the upload pending so the complete can be retried.
   */
  async complete(projectId: string, id: string, partIds: string[], md5?: string): Promise<UploadWithFile> {
    const upload = await this.claim(projectId, id);
    if (upload.status === 'completed') return this.get(projectId, id);
    let released = false;
    try {
      const parts = await this.prisma.uploadPart.findMany({ where: { uploadId: id } });
      const byId = new Map(parts.map((p) => [p.id, p]));
      const seen = new Set<string>();
      const ordered = partIds.map((pid, i) => {
        const part = byId.get(pid);
        if (!part) throw invalid(`part_ids[${i}]: no part '${pid}' in upload ${id}`, `part_ids[${i}]`);
        if (seen.has(pid)) throw invalid(`part_ids[${i}]: part '${pid}' is listed twice`, `part_ids[${i}]`);
        seen.add(pid);
        return part;
      });
      const total = ordered.reduce((a, p) => a + Number(p.bytes), 0);
      if (total !== Number(upload.bytes)) {
        throw invalid(`The listed parts hold ${total} bytes but the upload was created with bytes=${upload.bytes}`, 'part_ids');
      }
      const md5Hash = createHash('md5');
      const body = this.concat(ordered.map((p) => p.s3Key), md5Hash);
      const options = this.datasets.ingestOptions(undefined, { maxBytes: this.config.env.UPLOAD_MAX_BYTES });
      const staged = await this.datasets.stage(projectId, upload.filename, body, options).catch((err: unknown) => {
        body.destroy(); // stop reading the parts from S3
        throw err;
      });
      if (md5 !== undefined && md5Hash.digest('hex') !== md5.toLowerCase()) {
        await this.datasets.discard(staged);
        throw invalid('The md5 of the assembled file does not match the given md5', 'md5');
      }
      if (!staged.report.valid) {
        await this.datasets.discard(staged);
        const error = invalidFileError(upload.filename, staged.report);
        await this.finish(id, 'cancelled', null, { message: error.message, ...error.details });
        released = true;
        throw error;
      }
      const dataset = await this.datasets.register(staged, upload.purpose as FilePurpose);
      await this.finish(id, 'completed', dataset.id, null);
      released = true;
      return this.get(projectId, id);
    } finally {
      if (!released) await this.prisma.upload.update({ where: { id }, data: { completing: false } });
    }
  }

  async cancel(projectId: string, id: string): Promise<UploadWithFile> {
    const upload = await this.claim(projectId, id);
    if (upload.status !== 'pending') {
      throw new DomainError('invalid_state', `Upload ${id} is ${upload.status}; only a pending upload can be cancelled`, 'upload_id');
    }
    await this.finish(id, 'cancelled', null, null);
    return this.get(projectId, id);
  }

  /** Expires every pending upload past its time (parts deleted by prefix); returns how many. */
  async sweepExpired(now = new Date()): Promise<number> {
    const due = await this.prisma.upload.findMany({ where: { status: 'pending', completing: false, expiresAt: { lt: now } }, select: { id: true } });
    let n = 0;
    for (const { id } of due) {
      const claimed = await this.prisma.upload.updateMany({ where: { id, status: 'pending', completing: false }, data: { completing: true } });
      if (claimed.count === 0) continue;
      try {
        await this.finish(id, 'expired', null, null);
        n++;
      } catch (err) {
        await this.prisma.upload.update({ where: { id }, data: { completing: false } });
        throw err;
      }
    }
    return n;
  }

  /**
   * Takes the upload for a complete or cancel (compare-and-set on `completing`), so two cannot run at once. A finished
   * upload is returned as is; an expired one is expired on the spot.
   */
  private async claim(projectId: string, id: string): Promise<Upload> {
    const upload = await this.prisma.upload.findFirst({ where: { id, projectId } });
    if (!upload) throw notFound('upload', id, 'upload_id');
    if (upload.status !== 'pending') {
      if (upload.status === 'completed') return upload;
      throw notPending(id, upload.status, upload.error);
    }
    const claimed = await this.prisma.upload.updateMany({ where: { id, status: 'pending', completing: false }, data: { completing: true } });
    if (claimed.count === 0) {
      const now = await this.prisma.upload.findUniqueOrThrow({ where: { id } });
      if (now.status === 'completed') return now;
      throw new DomainError('invalid_state', `Upload ${id} is being completed or cancelled by another request`, 'upload_id');
    }
    if (upload.expiresAt.getTime() < Date.now()) {
      await this.finish(id, 'expired', null, null);
      throw notPending(id, 'expired');
    }
    return upload;
  }

  /** Deletes the part objects (by prefix) and rows, then records the final status; the upload must be claimed. */
  private async finish(id: string, status: 'completed' | 'cancelled' | 'expired', fileId: string | null, error: Record<string, unknown> | null) {
    const upload = await this.prisma.upload.findUniqueOrThrow({ where: { id } });
    const keys = (await this.store.list(upload.s3Prefix)).map((o) => o.key);
    if (keys.length) await this.store.delete(keys);
    await this.prisma.$transaction([
      this.prisma.uploadPart.deleteMany({ where: { uploadId: id } }),
      this.prisma.upload.update({
        where: { id },
        data: { status, fileId, completing: false, error: error === null ? Prisma.JsonNull : (error as Prisma.InputJsonValue) },
      }),
    ]);
  }

  private async pending(projectId: string, id: string): Promise<Upload> {
    const upload = await this.prisma.upload.findFirst({ where: { id, projectId } });
    if (!upload) throw notFound('upload', id, 'upload_id');
    if (upload.status !== 'pending' || upload.completing) throw notPending(id, upload.completing ? 'being completed' : upload.status, upload.error);
    if (upload.expiresAt.getTime() < Date.now()) throw notPending(id, 'expired');
    return upload;
  }

  /** The part objects one after the other as one stream, read lazily (one part open at a time). */
  private concat(keys: string[], md5: ReturnType<typeof createHash>): Readable {
    const out = new PassThrough();
    (async () => {
      for (const key of keys) {
        const part = await this.store.get(key);
        if (!part) throw new DomainError('internal', `A part of the upload is missing from object storage (${key})`);
        for await (const chunk of part) {
          if (out.destroyed) {
            part.destroy();
            return;
          }
          md5.update(chunk as Buffer);
          if (!out.write(chunk)) await new Promise((r) => (out.once('drain', r), out.once('close', r)));
        }
      }
      out.end();
    })().catch((err: unknown) => out.destroy(err as Error));
    return out;
  }

  private async removeQuietly(keys: string[]) {
    try {
      await this.store.delete(keys);
    } catch (err) {
      // The sweep deletes the upload's whole prefix when it expires, so a leftover here is found later.
      this.logger.warn({ err, keys }, 'could not delete a part object');
    }
  }
}

function notPending(id: string, status: string, error?: unknown): DomainError {
  return new DomainError('invalid_state', `Upload ${id} is ${status}; it no longer accepts parts or completion`, 'upload_id', {
    details: error ? { upload_error: error } : undefined,
  });
}
