import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import { parseServedName } from '../serving/served-name';
import { ServingService } from '../serving/serving.service';
import { JobReadCache } from '../training/job-read-cache';
import { ModelCatalog } from '../training/model-catalog';
import { callableCards, ModelCard } from './model-cards';
import { RoutingTable } from './routing-table';

const unix = (d: Date) => Math.floor(d.getTime() / 1000);
const notFound = (id: string) => new DomainError('model_not_found', `The model '${id}' does not exist or you do not have access to it.`, 'model');

/**
 * OpenAI's models API for a project: what it can call now (from the routing table: base models with a ready pool,
 * deployed versions, aliases, deployed fine-tuned models, provider models, each with `routing`), plus the base
 * models loraplane can fine-tune and the project's fine-tuned models that are not deployed anywhere.
 */
@Injectable()
export class ModelsService {
  constructor(private readonly prisma: PrismaService, private readonly catalog: ModelCatalog, private readonly table: RoutingTable, private readonly serving: ServingService, private readonly reads: JobReadCache) {}

  async list(projectId: string): Promise<ModelCard[]> {
    const cards = new Map<string, ModelCard>();
    for (const m of this.catalog.all()) cards.set(m.id, { id: m.id, object: 'model', created: m.createdAt, owned_by: 'loraplane', development: m.development });
    // Succeeded jobs change only by an UPDATE (a deleted model), which the read cache hears of.
    const tuned = await this.reads.get(`tuned-models:${projectId}`, () =>
      this.prisma.fineTuningJob.findMany({
        where: { projectId, status: 'succeeded', fineTunedModel: { not: null }, modelDeletedAt: null },
        orderBy: { finishedAt: 'asc' },
        select: { id: true, model: true, fineTunedModel: true, finishedAt: true },
      }),
    );
    for (const j of tuned) cards.set(j.fineTunedModel!, { id: j.fineTunedModel!, object: 'model', created: unix(j.finishedAt!), owned_by: projectId, parent: j.model, job_id: j.id });
    for (const c of callableCards(this.table.routes(projectId), projectId)) cards.set(c.id, { ...cards.get(c.id), ...c });
    return [...cards.values()];
  }

  async get(projectId: string, id: string): Promise<ModelCard> {
    const card = (await this.list(projectId)).find((c) => c.id === id);
    if (!card) throw notFound(id);
    return card;
  }

  /**
   * A fine-tuned model: undeployed from every pool and no longer listed or callable (the job and its adapter files
   * stay). `adapter@vN`: undeployed from every pool. A provider model: its configuration removed.
   */
  async remove(projectId: string, id: string): Promise<void> {
    if (this.catalog.find(id)) throw new DomainError('invalid_request', `'${id}' is a base model; only fine-tuned models can be deleted`, 'model');
    const provider = await this.prisma.providerModel.findUnique({ where: { projectId_name: { projectId, name: id } } });
    if (provider) {
      await this.prisma.providerModel.delete({ where: { id: provider.id } });
    } else if (id.startsWith('ft:')) {
      const job = await this.prisma.fineTuningJob.findFirst({ where: { projectId, fineTunedModel: id, modelDeletedAt: null } });
      if (!job) throw notFound(id);
      const versions = await this.prisma.adapterVersion.findMany({ where: { projectId, jobId: job.id, checkpointId: null }, include: { adapter: { select: { name: true } } } });
      for (const v of versions) await this.undeployEverywhere(projectId, v.adapter.name, v.version);
      await this.prisma.fineTuningJob.updateMany({ where: { id: job.id, modelDeletedAt: null }, data: { modelDeletedAt: new Date() } });
      this.reads.invalidate();
    } else {
      const parsed = parseServedName(id);
      if (!parsed || (await this.undeployEverywhere(projectId, parsed.adapter, parsed.version)) === 0) throw notFound(id);
    }
    await this.table.refresh();
  }

  private async undeployEverywhere(projectId: string, adapter: string, version: number): Promise<number> {
    const deployments = await this.prisma.deployment.findMany({
      where: { projectId, version: { version, adapter: { name: adapter, projectId } } },
      include: { pool: { select: { name: true } } },
    });
    for (const d of deployments) await this.serving.undeploy(projectId, d.pool.name, adapter, version);
    return deployments.length;
  }
}
