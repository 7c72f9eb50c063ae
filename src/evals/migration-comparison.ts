import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DomainError, notFound } from '../common/domain-error';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { EvalSuite, EvalTarget } from '../generated/prisma/client';
import { OpenAIHttpClient } from '../serving/openai-http.client';
import { servedName } from '../serving/served-name';
import { OpenAIFineTuningClient, OpenAIJob } from '../training/migrate/openai-fine-tuning-client';
import { SuiteImporter } from './benchmarks/suite-importer';
import { ComparisonsService, ComparisonWithRuns } from './comparisons.service';
import { EvalsService } from './evals.service';

export interface MigrationComparisonRequest {
  /** The user's OpenAI key: sealed into the api target (the comparison calls their fine-tuned model with it). */
  apiKey: string;
  /** The loraplane job that recreated an OpenAI job (a plan's create body, started). */
  job: string;
  /** The OpenAI job it recreated; default: the job's metadata.migrated_from. */
  openaiJob?: string;
  /** A seeded sample of the validation file; unset: every line. */
  limit?: number;
  seed: number;
  scorer: 'exact_match' | 'contains' | 'regex' | 'numeric';
  maxTokens: number;
}

type TargetWithPool = Awaited<ReturnType<EvalsService['getTarget']>>;

export interface MigrationComparison {
  comparison: ComparisonWithRuns;
  suite: EvalSuite;
  targets: { openai: TargetWithPool; loraplane: TargetWithPool };
}

/**
 * The last step of a migration from OpenAI fine-tuning: the user's OpenAI fine-tuned model (an api target, called
 * with their key at the operator's OPENAI_BASE_URL) against the adapter the migrated job made (an adapter target on a
 * pool where that version is deployed), on the OpenAI job's validation file (a chat suite: the last assistant turn is
 * the reference), as an ordinary comparison with the OpenAI model as baseline. Everything it creates is named after
 * the OpenAI job, so asking again returns the same comparison instead of running it twice.
 */
@Injectable()
export class MigrationComparisons {
  constructor(
    private readonly prisma: PrismaService,
    private readonly evals: EvalsService,
    private readonly importer: SuiteImporter,
    private readonly comparisons: ComparisonsService,
    private readonly config: Config,
    private readonly http: OpenAIHttpClient,
  ) {}

  async compare(projectId: string, req: MigrationComparisonRequest): Promise<MigrationComparison> {
    const job = await this.prisma.fineTuningJob.findFirst({ where: { id: req.job, projectId } });
    if (!job) throw notFound('fine-tuning job', req.job, 'job');
    if (job.status !== 'succeeded') throw new DomainError('invalid_state', `Job ${job.id} is ${job.status}: compare it once it has succeeded`, 'job');
    const openaiJobId = req.openaiJob ?? (job.metadata as Record<string, string> | null)?.migrated_from;
    if (!openaiJobId) throw new DomainError('invalid_request', `Job ${job.id} has no metadata.migrated_from: name the OpenAI job it recreates in 'openai_job'`, 'openai_job');
    const names = resourceNames(openaiJobId);
    const existing = await this.prisma.evalComparison.findUnique({ where: { projectId_name: { projectId, name: names.comparison } } });
    if (existing) return this.found(projectId, names);

    const client = new OpenAIFineTuningClient(this.http, this.config.env.OPENAI_BASE_URL, req.apiKey, this.config.env.EVAL_REQUEST_TIMEOUT_MS);
    const source = await client.retrieveJob(openaiJobId);
    const { model, validationFile } = comparable(source);
    const deployed = await this.deployedVersion(projectId, job.id);

    const suite =
      (await this.prisma.evalSuite.findUnique({ where: { projectId_name: { projectId, name: names.suite } } })) ??
      (await this.importValidation(projectId, client, validationFile, names.suite, req));
    const common = { maxTokens: req.maxTokens, concurrency: 4, stream: false, temperature: 0 };
    const openai = await this.targetOrCreate(projectId, names.openai, () =>
      this.evals.createTarget(projectId, { ...common, name: names.openai, kind: 'api', baseUrl: this.config.env.OPENAI_BASE_URL, apiKey: req.apiKey, model, temperature: undefined }),
    );
    const loraplane = await this.targetOrCreate(projectId, names.loraplane, () =>
      this.evals.createTarget(projectId, { ...common, name: names.loraplane, kind: 'adapter', pool: deployed.pool, adapter: deployed.adapter, version: deployed.version }),
    );
    await this.comparisons.create(projectId, { name: names.comparison, suites: [suite.id], targets: [openai.id, loraplane.id], baseline: openai.id });
    return this.found(projectId, names);
  }

  private async found(projectId: string, names: ReturnType<typeof resourceNames>): Promise<MigrationComparison> {
    const [comparison, suite, openai, loraplane] = await Promise.all([
      this.comparisons.get(projectId, names.comparison),
      this.evals.getSuite(projectId, names.suite),
      this.evals.getTarget(projectId, names.openai),
      this.evals.getTarget(projectId, names.loraplane),
    ]);
    return { comparison, suite, targets: { openai, loraplane } };
  }

  /** The job's newest adapter version and a pool of this project where it is deployed. */
  private async deployedVersion(projectId: string, jobId: string) {
    const version = await this.prisma.adapterVersion.findFirst({ where: { projectId, jobId, deletedAt: null }, orderBy: { createdAt: 'desc' }, include: { adapter: true } });
    if (!version) throw new DomainError('invalid_state', `Job ${jobId} has no adapter version: register it (POST /v1/adapters/{name}/versions) or let an auto_deploy pool take it`, 'job');
    const deployment = await this.prisma.deployment.findFirst({ where: { projectId, versionId: version.id }, orderBy: { createdAt: 'asc' }, include: { pool: true } });
    if (!deployment) throw new DomainError('invalid_state', `${servedName(version.adapter.name, version.version)} (job ${jobId}) is not deployed on any pool: deploy it first`, 'job');
    return { pool: deployment.pool.name, adapter: version.adapter.name, version: version.version };
  }

  private async importValidation(projectId: string, client: OpenAIFineTuningClient, fileId: string, name: string, req: MigrationComparisonRequest) {
    const meta = await client.retrieveFile(fileId);
    const staged = await client.readFileContent(fileId, (content) =>
      this.importer.stage(projectId, meta.filename, content, { name, format: 'chat', limit: req.limit, seed: req.seed, shots: 0, scorer: req.scorer }),
    );
    return this.importer.finish(projectId, staged);
  }

  private async targetOrCreate(projectId: string, name: string, create: () => Promise<EvalTarget>): Promise<EvalTarget> {
    return (await this.prisma.evalTarget.findUnique({ where: { projectId_name: { projectId, name } } })) ?? create();
  }
}

/** What the comparison needs from the OpenAI job: its fine-tuned model and a held-out file. */
function comparable(job: OpenAIJob): { model: string; validationFile: string } {
  if (job.status !== 'succeeded' || !job.fine_tuned_model) {
    throw new DomainError('invalid_request', `OpenAI job ${job.id} is ${job.status} with no fine-tuned model to compare`, 'openai_job');
  }
  if (!job.validation_file) {
    throw new DomainError('invalid_request', `OpenAI job ${job.id} has no validation file: nothing held out to compare on`, 'openai_job');
  }
  return { model: job.fine_tuned_model, validationFile: job.validation_file };
}

/**
 * Names of what a comparison of one OpenAI job creates: eval names are lowercase, OpenAI ids are not, so the exact id
 * is kept as a hash beside its lowercase form.
 */
export function resourceNames(openaiJobId: string) {
  const slug = openaiJobId.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 32);
  const base = `migrate-${slug}-${createHash('sha256').update(openaiJobId).digest('hex').slice(0, 8)}`;
  return { comparison: base, suite: `${base}.validation`, openai: `${base}.openai`, loraplane: `${base}.loraplane` };
}
