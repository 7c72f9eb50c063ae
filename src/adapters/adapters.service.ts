import { Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Adapter, AdapterVersion, Prisma } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { readHyperparameters } from '../training/hyperparameters';
import { ADAPTER_FILES, AdapterWriter, FileRecord, storeHashed } from './adapter-files';
import { unpackTarball } from './adapter-tarball';
import { importPrefix } from './import-prefix';
import { checkPeftConfig, PeftSummary } from './peft-config';
import { servedName } from '../serving/served-name';

export interface RegisterVersion {
  jobId: string;
  /** Register a checkpoint of the job instead of its final adapter. */
  checkpointId?: string;
  description?: string;
}

/** An imported adapter whose files are checked and in S3, but which is not a version yet. */
export interface StagedImport {
  projectId: string;
  name: string;
  /** The adapter's id, or the id it gets if this import creates it. */
  adapterId: string;
  versionId: string;
  prefix: string;
  importedFrom: string;
  files: FileRecord[];
  config: Record<string, unknown>;
  peft: PeftSummary;
}

export interface VersionResult {
  adapter: Adapter;
  version: AdapterVersion;
  /** False when the request matched an existing version (same job output, or the same bytes imported again). */
  created: boolean;
}

/** What a new version row holds besides its adapter and number. */
type NewVersion = Omit<Prisma.AdapterVersionUncheckedCreateInput, 'adapterId' | 'projectId' | 'version'> & { id: string; s3Prefix: string };

const versionPrefix = (projectId: string, adapterId: string, versionId: string) => `projects/${projectId}/adapters/${adapterId}/${versionId}/`;

/**
 * The adapter registry. A version is immutable: its files are copied (re-hashed while copied) from a job's output,
 * an uploaded tarball or an S3 prefix to the adapter's own prefix, so neither a later job nor a retried upload can
 * change what a version name serves. Lineage (job, checkpoint, dataset, hyperparameters, or where it was imported
 * from) is kept with it.
 */
@Injectable()
export class AdaptersService {
  private readonly logger = new Logger(AdaptersService.name);

  constructor(private readonly prisma: PrismaService, private readonly store: ObjectStore, private readonly config: Config) {}

  async register(projectId: string, name: string, req: RegisterVersion): Promise<VersionResult> {
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
    const sameOutput = { jobId: job.id, checkpointId: source.checkpointId };
    const existing = await this.prisma.adapterVersion.findFirst({ where: { adapterId: adapter.id, ...sameOutput, deletedAt: null } });
    if (existing) return { adapter, version: existing, created: false };

    const config = await this.readJson(source.prefix + 'adapter_config.json');
    const peft = checkPeftConfig(config);
    if (peft.baseModel !== job.model) {
      throw new DomainError('invalid_adapter', `adapter_config.json names base model '${peft.baseModel}' but the job trained '${job.model}'`, 'job_id');
    }
    const versionId = newId.adapterVersion();
    const prefix = versionPrefix(projectId, adapter.id, versionId);
    const copied: FileRecord[] = [];
    const keys = () => ADAPTER_FILES.map((n) => prefix + n);
    try {
      for (const f of files as FileRecord[]) copied.push(await this.copyVerified(source.prefix + f.name, prefix + f.name, f));
      const result = await this.createVersion(adapter, sameOutput, {
        id: versionId,
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
        // The training record as of now, whole (the method included), parsed: the version is immutable, the job is not.
        hyperparameters: readHyperparameters(job) as Prisma.InputJsonValue,
      });
      if (!result.created) await this.discardQuietly(keys()); // a concurrent request registered it first
      else this.logger.log({ adapter: name, version: result.version.version, jobId: job.id }, 'registered adapter version');
      return { adapter, ...result };
    } catch (err) {
      await this.discardQuietly(keys());
      throw err;
    }
  }

  /** Streams an uploaded PEFT directory tarball into a new version's prefix, checking it; registers nothing yet. */
  async stageTarball(projectId: string, name: string, filename: string, upload: Readable): Promise<StagedImport> {
    return this.stageImport(projectId, name, filename, 'file', (writer) => unpackTarball(upload, this.config.env.MAX_UPLOAD_BYTES, writer));
  }

  /** Copies a PEFT directory from an allowed S3 prefix (re-hashed and checked while copied) and registers it. */
  async importFromS3(projectId: string, name: string, uri: string, description?: string): Promise<VersionResult> {
    const bucket = this.store.bucket;
    const from = importPrefix(uri, { bucket, projectId, shared: this.config.env.ADAPTER_IMPORT_PREFIXES });
    const importedFrom = `s3://${bucket}/${from}`;
    const staged = await this.stageImport(projectId, name, importedFrom, 's3_prefix', async (writer) => {
      for (const file of ADAPTER_FILES) {
        const body = await this.store.get(from + file);
        if (!body) throw new DomainError('invalid_adapter', `${importedFrom} has no ${file} (both adapter_config.json and adapter_model.safetensors are required)`, 's3_prefix');
        await writer.write(file, body);
      }
    });
    return this.commitImport(staged, description);
  }

  /**
   * Makes a staged import a version. The same bytes imported again (the same files and sha256s) are the version
   * they already became: it is returned and the new copy dropped.
   */
  async commitImport(staged: StagedImport, description?: string): Promise<VersionResult> {
    try {
      const adapter = await this.ensureAdapter(staged.projectId, staged.name, description, staged.adapterId);
      const files = staged.files as unknown as Prisma.InputJsonValue;
      const result = await this.createVersion(adapter, { files: { equals: files } }, {
        id: staged.versionId,
        s3Prefix: staged.prefix,
        files,
        peftConfig: staged.config as Prisma.InputJsonValue,
        baseModel: staged.peft.baseModel,
        rank: staged.peft.rank,
        targetModules: staged.peft.targetModules,
        source: 'import',
        importedFrom: staged.importedFrom,
      });
      if (!result.created) await this.discardImport(staged);
      else this.logger.log({ adapter: staged.name, version: result.version.version, importedFrom: staged.importedFrom }, 'imported adapter version');
      return { adapter, ...result };
    } catch (err) {
      await this.discardImport(staged);
      throw err;
    }
  }

  /** Drops a staged import that will not become a version (bad form field, a failure after staging). */
  async discardImport(staged: StagedImport): Promise<void> {
    await this.discardQuietly(staged.files.map((f) => staged.prefix + f.name));
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
    if (!row) throw notFound('adapter version', servedName(name, version), 'version');
    return row;
  }

  /** Presigned GET URLs for every file of a version (what an agent or a person downloads). */
  async downloads(version: AdapterVersion): Promise<(FileRecord & { url: string })[]> {
    const files = version.files as unknown as FileRecord[];
    return Promise.all(files.map(async (f) => ({ ...f, url: await this.store.presignGet(version.s3Prefix + f.name) })));
  }

  /**
   * Soft delete: the bytes stay for lineage. Refused while a pool deploys the version or an alias (or its canary)
   * names it, since replicas would go on serving a version the registry no longer lists. The version row is locked,
   * so a deployment written concurrently (which locks it too) cannot slip in between the check and the delete.
   */
  async deleteVersion(projectId: string, name: string, version: number): Promise<void> {
    const row = await this.getVersion(projectId, name, version);
    await this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "AdapterVersion" WHERE id = ${row.id} FOR UPDATE`;
      const [deployments, aliases] = await Promise.all([
        tx.deployment.findMany({ where: { versionId: row.id }, select: { poolId: true } }),
        tx.alias.findMany({ where: { OR: [{ versionId: row.id }, { canaryVersionId: row.id }] }, select: { poolId: true } }),
      ]);
      const poolIds = [...new Set([...deployments, ...aliases].map((d) => d.poolId))];
      if (poolIds.length > 0) {
        const pools = (await tx.servingPool.findMany({ where: { id: { in: poolIds } }, select: { name: true }, orderBy: { name: 'asc' } })).map((p) => p.name);
        throw new DomainError('version_in_use', `${servedName(name, version)} is deployed on ${pools.join(', ')}; undeploy it (and move any alias off it) first`, 'version', {
          details: { pools },
        });
      }
      await tx.adapterVersion.update({ where: { id: row.id }, data: { deletedAt: new Date() } });
    });
  }

  /**
   * The one way a version row is made: under a lock on the adapter row, so numbers are handed out one at a time and
   * a duplicate (`sameAs`: the same job output, the same imported bytes) that a concurrent request made is returned
   * instead of numbered twice. The caller drops its copied files when `created` is false.
   */
  private async createVersion(adapter: Adapter, sameAs: Prisma.AdapterVersionWhereInput, data: NewVersion): Promise<{ version: AdapterVersion; created: boolean }> {
    return this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "Adapter" WHERE id = ${adapter.id} FOR UPDATE`;
      const existing = await tx.adapterVersion.findFirst({ where: { ...sameAs, adapterId: adapter.id, deletedAt: null } });
      if (existing) return { version: existing, created: false };
      const last = await tx.adapterVersion.aggregate({ where: { adapterId: adapter.id }, _max: { version: true } });
      const version = await tx.adapterVersion.create({
        data: { ...data, adapterId: adapter.id, projectId: adapter.projectId, version: (last._max.version ?? 0) + 1 },
      });
      return { version, created: true };
    });
  }

  /**
   * The adapter an import writes under needs an id before its files are written, but the row only once the import
   * succeeded (a refused upload leaves nothing behind): it is staged with the existing id or a fresh one, created
   * here. Should another request create the name meanwhile, its row wins; the staged files keep their prefix,
   * which the version records.
   */
  private async stageImport(
    projectId: string,
    name: string,
    importedFrom: string,
    param: string,
    fill: (writer: AdapterWriter) => Promise<void>,
  ): Promise<StagedImport> {
    const existing = await this.prisma.adapter.findUnique({ where: { projectId_name: { projectId, name } } });
    const adapterId = existing?.id ?? newId.adapter();
    const versionId = newId.adapterVersion();
    const writer = new AdapterWriter(this.store, versionPrefix(projectId, adapterId, versionId));
    try {
      await fill(writer);
      return { projectId, name, adapterId, versionId, prefix: writer.prefix, importedFrom, ...writer.result(param) };
    } catch (err) {
      await this.discardQuietly(writer.keys());
      throw err;
    }
  }

  private async ensureAdapter(projectId: string, name: string, description?: string, id = newId.adapter()): Promise<Adapter> {
    return this.prisma.adapter.upsert({
      where: { projectId_name: { projectId, name } },
      update: {},
      create: { id, projectId, name, description },
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
    const copied = await storeHashed(this.store, to, expected.name, body);
    if (copied.sha256 !== expected.sha256 || copied.bytes !== expected.bytes) {
      throw new DomainError('invalid_adapter', `${expected.name} in storage does not match the sha256 the trainer announced`, 'job_id');
    }
    return copied;
  }

  /** Orphans are preferable to masking the original failure; they sit under a version prefix no row names. */
  private async discardQuietly(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.store.delete(keys);
    } catch (err) {
      this.logger.warn({ err, keys }, 'could not delete the files of an adapter version that was not registered');
    }
  }
}
