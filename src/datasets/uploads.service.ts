import { Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError, invalid, notFound } from '../common/domain-error';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Quotas } from '../projects/quotas';
import { Dataset, Prisma, Upload, UploadPart } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { DatasetsService, FilePurpose, invalidFileError } from './datasets.service';

export type UploadWithFile = Upload & { file: Dataset | null };

const uploadId = () => `upload_${randomBytes(12).toString('base64url')}`;
const partId = () => `part_${randomBytes(12).toString('base64url')}`;
const leaseId = () => randomBytes(9).toString('base64url');

/** Who holds an upload (a complete, a cancel, the sweep) and until when. */
interface Lease {
  id: string;
  /** Set once a renewal found the lease gone (it lapsed and another holder took over). */
  lost: boolean;
}

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
    private readonly quotas: Quotas,
  ) {}

  async create(projectId: string, input: { bytes: number; filename: string; mimeType: string; purpose: FilePurpose }): Promise<UploadWithFile> {
    const env = this.config.env;
    if (input.bytes > env.UPLOAD_MAX_BYTES) {
      throw new DomainError('invalid_request', `'bytes' is ${input.bytes}; the largest upload is ${env.UPLOAD_MAX_BYTES} bytes`, 'bytes');
    }
    await this.quotas.assertStoredBytes(projectId, input.bytes, 'bytes');
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
    // A part may not take the upload past the bytes it declared: what the parts already hold leaves this much room.
    const room = Number(upload.bytes) - (await this.storedBytes(this.prisma, id));
    const partMax = this.config.env.UPLOAD_MAX_PART_BYTES;
    const max = Math.min(partMax, room);
    const tooLarge = () =>
      max === partMax
        ? new DomainError('payload_too_large', `A part may be at most ${partMax} bytes`, 'data')
        : new DomainError('payload_too_large', `The upload was created with bytes=${upload.bytes}; its parts may hold ${room} more bytes`, 'data');
    if (room <= 0) throw tooLarge();
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, done) {
        bytes += chunk.length;
        if (bytes > max) done(tooLarge());
        else done(null, chunk);
      },
    });
    try {
      // The pipeline's own error (the client went away, the part is too large) wins over the store's view of it.
      await Promise.all([pipeline(body, counter), this.store.put(key, counter, 'application/octet-stream')]);
      if (bytes === 0) throw invalid('The part is empty', 'data');
      // The upload may have been cancelled, completed or expired while the bytes arrived: the row insert checks.
      return await this.prisma.$transaction(async (tx) => {
        const rows = await tx.$queryRaw<{ status: string; leaseUntil: Date | null }[]>`SELECT status, "leaseUntil" FROM "Upload" WHERE id = ${id} FOR UPDATE`;
        if (rows[0]?.status !== 'pending' || leased(rows[0].leaseUntil)) throw notPending(id, rows[0]?.status ?? 'gone');
        // Parts sent side by side each saw the same room; under the row lock the total is checked for real.
        if ((await this.storedBytes(tx, id)) + bytes > Number(upload.bytes)) {
          throw new DomainError('payload_too_large', `The upload was created with bytes=${upload.bytes}; this part would take its parts past it`, 'data');
        }
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
    const { upload, lease } = await this.claim(projectId, id);
    if (!lease) return this.get(projectId, id);
    const renew = setInterval(() => void this.renew(id, lease), (this.config.env.UPLOAD_COMPLETE_LEASE_SECONDS * 1000) / 3);
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
      // The size is known here: a file past the inline token budget gets its tokens counted by the worker after it
      // is registered, so the ingest does not tokenize its first TOKENIZE_INLINE_BYTES only to drop the count.
      const deferTokens = total > this.config.env.TOKENIZE_INLINE_BYTES;
      const options = this.datasets.ingestOptions(undefined, { maxBytes: this.config.env.UPLOAD_MAX_BYTES, ...(deferTokens ? { tokenBudgetBytes: 0 } : {}) });
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
        await this.finish(id, lease, 'cancelled', null, { message: error.message, ...error.details });
        released = true;
        throw error;
      }
      const dataset = await this.datasets.register(staged, upload.purpose as FilePurpose);
      await this.finish(id, lease, 'completed', dataset.id, null);
      released = true;
      return this.get(projectId, id);
    } finally {
      clearInterval(renew);
      if (!released) await this.release(id, lease);
    }
  }

  async cancel(projectId: string, id: string): Promise<UploadWithFile> {
    const { upload, lease } = await this.claim(projectId, id);
    if (!lease) throw new DomainError('invalid_state', `Upload ${id} is ${upload.status}; only a pending upload can be cancelled`, 'upload_id');
    try {
      await this.finish(id, lease, 'cancelled', null, null);
    } catch (err) {
      await this.release(id, lease);
      throw err;
    }
    return this.get(projectId, id);
  }

  /**
   * Expires every pending upload past its time (parts deleted by prefix); returns how many. One whose complete
   * crashed is among them once that complete's lease lapsed.
   */
  async sweepExpired(now = new Date()): Promise<number> {
    const due = await this.prisma.upload.findMany({
      where: { status: 'pending', expiresAt: { lt: now }, OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }] },
      select: { id: true },
    });
    let n = 0;
    for (const { id } of due) {
      const lease = await this.takeLease(id);
      if (!lease) continue;
      try {
        await this.finish(id, lease, 'expired', null, null);
        n++;
      } catch (err) {
        await this.release(id, lease);
        throw err;
      }
    }
    return n;
  }

  /**
   * Takes the upload's lease for a complete or cancel, so two cannot run at once. A completed upload comes back
   * without a lease (a retried complete answers with it); an expired one is expired on the spot.
   */
  private async claim(projectId: string, id: string): Promise<{ upload: Upload; lease: Lease | null }> {
    const upload = await this.prisma.upload.findFirst({ where: { id, projectId } });
    if (!upload) throw notFound('upload', id, 'upload_id');
    if (upload.status !== 'pending') {
      if (upload.status === 'completed') return { upload, lease: null };
      throw notPending(id, upload.status, upload.error);
    }
    const lease = await this.takeLease(id);
    if (!lease) {
      const now = await this.prisma.upload.findUniqueOrThrow({ where: { id } });
      if (now.status === 'completed') return { upload: now, lease: null };
      throw new DomainError('invalid_state', `Upload ${id} is being completed or cancelled by another request`, 'upload_id');
    }
    if (upload.expiresAt.getTime() < Date.now()) {
      await this.finish(id, lease, 'expired', null, null);
      throw notPending(id, 'expired');
    }
    return { upload, lease };
  }

  /** Compare-and-set: the lease is free, or its holder let it lapse (crashed). */
  private async takeLease(id: string): Promise<Lease | null> {
    const now = new Date();
    const lease: Lease = { id: leaseId(), lost: false };
    const { count } = await this.prisma.upload.updateMany({
      where: { id, status: 'pending', OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }] },
      data: { leaseId: lease.id, leaseUntil: this.leaseEnd() },
    });
    return count === 1 ? lease : null;
  }

  private async renew(id: string, lease: Lease): Promise<boolean> {
    const { count } = await this.prisma.upload.updateMany({ where: { id, leaseId: lease.id }, data: { leaseUntil: this.leaseEnd() } });
    if (count === 0) lease.lost = true;
    return count === 1;
  }

  private async release(id: string, lease: Lease): Promise<void> {
    await this.prisma.upload.updateMany({ where: { id, leaseId: lease.id }, data: { leaseId: null, leaseUntil: null } });
  }

  private leaseEnd(): Date {
    return new Date(Date.now() + this.config.env.UPLOAD_COMPLETE_LEASE_SECONDS * 1000);
  }

  /**
   * Deletes the part objects (by prefix) and rows, then records the final status, while holding the lease. A holder
   * that lost it (it stalled past the lease and another took over) stops before deleting anything.
   */
  private async finish(id: string, lease: Lease, status: 'completed' | 'cancelled' | 'expired', fileId: string | null, error: Record<string, unknown> | null) {
    if (lease.lost || !(await this.renew(id, lease))) throw leaseLost(id);
    const upload = await this.prisma.upload.findUniqueOrThrow({ where: { id } });
    const keys = (await this.store.list(upload.s3Prefix)).map((o) => o.key);
    if (keys.length) await this.store.delete(keys);
    await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.upload.updateMany({
        where: { id, leaseId: lease.id },
        data: { status, fileId, leaseId: null, leaseUntil: null, error: error === null ? Prisma.JsonNull : (error as Prisma.InputJsonValue) },
      });
      if (count === 0) throw leaseLost(id);
      await tx.uploadPart.deleteMany({ where: { uploadId: id } });
    });
  }

  private async storedBytes(db: Pick<PrismaService, 'uploadPart'>, id: string): Promise<number> {
    const sum = await db.uploadPart.aggregate({ where: { uploadId: id }, _sum: { bytes: true } });
    return Number(sum._sum.bytes ?? 0n);
  }

  private async pending(projectId: string, id: string): Promise<Upload> {
    const upload = await this.prisma.upload.findFirst({ where: { id, projectId } });
    if (!upload) throw notFound('upload', id, 'upload_id');
    const busy = leased(upload.leaseUntil);
    if (upload.status !== 'pending' || busy) throw notPending(id, busy ? 'being completed' : upload.status, upload.error);
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

/** A lease that has not lapsed: its holder is (presumably) still at work. */
const leased = (until: Date | null) => until !== null && until.getTime() > Date.now();

const leaseLost = (id: string) =>
  new DomainError('invalid_state', `Upload ${id} was taken over by another request while this one stalled; retry the complete to see its result`, 'upload_id');

function notPending(id: string, status: string, error?: unknown): DomainError {
  return new DomainError('invalid_state', `Upload ${id} is ${status}; it no longer accepts parts or completion`, 'upload_id', {
    details: error ? { upload_error: error } : undefined,
  });
}
