import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { PrismaService } from '../db/prisma.service';
import { Adapter, AdapterVersion, Prisma } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { checkPeftConfig } from './peft-config';

export interface FileRecord {
  name: string;
  bytes: number;
  sha256: string;
}

export interface RegisterVersion {
  jobId: string;
  /** Register a checkpoint of the job instead of its final adapter. */
  checkpointId?: string;
  description?: string;
}

/** The files vLLM needs; a checkpoint may carry more (optimizer state), which a version does not keep. */
const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

/**
 * The adapter registry. A version is immutable: its files are copied, and re-hashed while copied, from the job's
 * output to the adapter's own prefix, so neither a later job nor a retried upload can change what a version
 * name serves. Lineage (job, checkpoint, dataset, hyperparameters) is kept with it.
 */
@Injectable()
export class AdaptersService {
  private readonly logger = new Logger(AdaptersService.name);

  constructor(private readonly prisma: PrismaService, private readonly store: ObjectStore) {}

  async register(projectId: string, name: string, req: RegisterVersion): Promise<{ adapter: Adapter; version: AdapterVersion; created: boolean }> {
    const job = await this.prisma.fineTuningJob.findFirst({ where: { id: req.jobId, projectId } });
    if (!job) throw new DomainError('invalid_request', `No such fine-tuning job: '${req.jobId}'`, 'job_id');
    let source: { prefix: string; files: FileRecord[]; checkpointId: string | null };
    if (req.checkpointId) {
      const ckpt = await this.prisma.checkpoint.findFirst({ where: { id: req.checkpointId, jobId: job.id, projectId } });
      if (!ckpt) throw new DomainError('invalid_request', `No such checkpoint of ${job.id}: '${req.checkpointId}'`, 'checkpoint_id');
      source = { prefix: ckpt.keyPrefix, files: ckpt.files as unknown as FileRecord[], checkpointId: ckpt.id };
    } else {
      const result = job.resultFiles as { key_prefix: string; files: FileRecord[] } | null;
      if (job.status !== 'succeeded' || !result) {
        throw new DomainError('invalid_state', `Job ${job.id} is ${job.status}; only a succeeded job (or one of its checkpoints) can become an adapter version`, 'job_id');
      }
      source = { prefix: result.key_prefix, files: result.files, checkpointId: null };
    }
    const files = ADAPTER_FILES.map((n) => source.files.find((f) => f.name === n));
    if (files.some((f) => !f)) throw new DomainError('invalid_adapter', `The job's output lacks ${ADAPTER_FILES.join(' or ')}`, 'job_id');

    // Registering the same output twice returns the version it already became.
    const adapter = await this.ensureAdapter(projectId, name, req.description);
    const existing = await this.prisma.adapterVersion.findFirst({
      where: { adapterId: adapter.id, jobId: job.id, checkpointId: source.checkpointId, deletedAt: null },
    });
    if (existing) return { adapter, version: existing, created: false };

    const config = await this.readJson(source.prefix + 'adapter_config.json');
    const peft = checkPeftConfig(config);
    if (peft.baseModel !== job.model) {
      throw new DomainError('invalid_adapter', `adapter_config.json names base model '${peft.baseModel}' but the job trained '${job.model}'`, 'job_id');
    }
    const versionId = newId.adapterVersion();
    const prefix = `projects/${projectId}/adapters/${adapter.id}/${versionId}/`;
    const copied: FileRecord[] = [];
    try {
      for (const f of files as FileRecord[]) copied.push(await this.copyVerified(source.prefix + f.name, prefix + f.name, f));
    } catch (err) {
      await this.store.delete(copied.map((f) => prefix + f.name)).catch(() => undefined);
      throw err;
    }
    try {
      const version = await this.prisma.$transaction(async (tx) => {
        // Lock the adapter row: version numbers are handed out one at a time.
        await tx.$queryRaw`SELECT id FROM "Adapter" WHERE id = ${adapter.id} FOR UPDATE`;
        const last = await tx.adapterVersion.aggregate({ where: { adapterId: adapter.id }, _max: { version: true } });
        return tx.adapterVersion.create({
          data: {
            id: versionId,
            adapterId: adapter.id,
            projectId,
            version: (last._max.version ?? 0) + 1,
            s3Prefix: prefix,
            files: copied as unknown as Prisma.InputJsonValue,
            peftConfig: config as Prisma.InputJsonValue,
            baseModel: peft.baseModel,
            rank: peft.rank,
            targetModules: peft.targetModules,
            source: source.checkpointId ? 'checkpoint' : 'job',
            jobId: job.id,
            checkpointId: source.checkpointId,
            datasetId: job.trainingFileId,
            hyperparameters: job.hyperparameters as Prisma.InputJsonValue,
          },
        });
      });
      this.logger.log({ adapter: name, version: version.version, jobId: job.id }, 'registered adapter version');
      return { adapter, version, created: true };
    } catch (err) {
      await this.store.delete(copied.map((f) => prefix + f.name)).catch(() => undefined);
      throw err;
    }
  }

  async listAdapters(projectId: string) {
    return this.prisma.adapter.findMany({
      where: { projectId },
      orderBy: { createdAt: 'asc' },
      include: { versions: { where: { deletedAt: null }, orderBy: { version: 'desc' }, take: 1 } },
    });
  }

  async getAdapter(projectId: string, name: string): Promise<Adapter> {
    const adapter = await this.prisma.adapter.findUnique({ where: { projectId_name: { projectId, name } } });
    if (!adapter) throw notFound('adapter', name, 'adapter_name');
    return adapter;
  }

  async listVersions(projectId: string, name: string): Promise<AdapterVersion[]> {
    const adapter = await this.getAdapter(projectId, name);
    return this.prisma.adapterVersion.findMany({ where: { adapterId: adapter.id, deletedAt: null }, orderBy: { version: 'desc' } });
  }

  async getVersion(projectId: string, name: string, version: number): Promise<AdapterVersion> {
    const adapter = await this.getAdapter(projectId, name);
    const row = await this.prisma.adapterVersion.findFirst({ where: { adapterId: adapter.id, version, deletedAt: null } });
    if (!row) throw notFound('adapter version', `${name}@v${version}`, 'version');
    return row;
  }

  /** Presigned GET URLs for every file of a version (what an agent or a person downloads). */
  async downloads(version: AdapterVersion): Promise<(FileRecord & { url: string })[]> {
    const files = version.files as unknown as FileRecord[];
    return Promise.all(files.map(async (f) => ({ ...f, url: await this.store.presignGet(version.s3Prefix + f.name) })));
  }

  /** Soft delete: the bytes stay for lineage. (Refusing while deployed arrives with deployments.) */
  async deleteVersion(projectId: string, name: string, version: number): Promise<void> {
    const row = await this.getVersion(projectId, name, version);
    await this.prisma.adapterVersion.update({ where: { id: row.id }, data: { deletedAt: new Date() } });
  }

  private async ensureAdapter(projectId: string, name: string, description?: string): Promise<Adapter> {
    return this.prisma.adapter.upsert({
      where: { projectId_name: { projectId, name } },
      update: {},
      create: { id: newId.adapter(), projectId, name, description },
    });
  }

  private async readJson(key: string): Promise<unknown> {
    const body = await this.store.get(key);
    if (!body) throw new DomainError('invalid_adapter', `${key.split('/').pop()} is missing from the job's output`, 'job_id');
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new DomainError('invalid_adapter', 'adapter_config.json is not valid JSON', 'job_id');
    }
  }

  /** Copies one object while hashing it; the bytes must be the ones the trainer announced. */
  private async copyVerified(from: string, to: string, expected: FileRecord): Promise<FileRecord> {
    const body = await this.store.get(from);
    if (!body) throw new DomainError('invalid_adapter', `${expected.name} is missing from the job's output`, 'job_id');
    const hash = createHash('sha256');
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    await Promise.all([pipeline(body, tap), this.store.put(to, tap)]);
    const sha256 = hash.digest('hex');
    if (sha256 !== expected.sha256 || bytes !== expected.bytes) {
      await this.store.delete([to]).catch(() => undefined);
      throw new DomainError('invalid_adapter', `${expected.name} in storage does not match the sha256 the trainer announced`, 'job_id');
    }
    return { name: expected.name, bytes, sha256 };
  }
}
