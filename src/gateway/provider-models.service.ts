import { Injectable } from '@nestjs/common';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { TargetGuard } from '../common/net/target-guard';
import { SecretBox } from '../common/secret-box';
import { PrismaService } from '../db/prisma.service';
import { ProviderModel } from '../generated/prisma/client';
import { RoutingTable } from './routing-table';

export interface NewProviderModel {
  name: string;
  baseUrl: string;
  upstreamModel?: string;
  apiKey?: string;
}

/**
 * A project's external OpenAI-compatible models (OpenAI itself, another provider, a self-run server), called through
 * the gateway by `name` next to its own models. The key is sealed at once and opened only by the routing table.
 */
@Injectable()
export class ProviderModelsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly secrets: SecretBox,
    private readonly table: RoutingTable,
    private readonly guard: TargetGuard,
  ) {}

  async create(projectId: string, input: NewProviderModel): Promise<ProviderModel> {
    // A tenant-supplied URL like any other: refused at create when it leads inside (and at every connection anyway).
    await this.guard.assertAllowed(input.baseUrl, 'base_url');
    if (await this.prisma.providerModel.findUnique({ where: { projectId_name: { projectId, name: input.name } } })) {
      throw new DomainError('invalid_request', `A provider model named '${input.name}' already exists in this project`, 'name');
    }
    const id = newId.providerModel();
    const row = await this.prisma.providerModel.create({
      data: {
        id,
        projectId,
        name: input.name,
        baseUrl: input.baseUrl.replace(/\/+$/, ''),
        upstreamModel: input.upstreamModel ?? input.name,
        apiKeySealed: input.apiKey ? this.secrets.seal(input.apiKey, { purpose: 'provider_model.api_key', id }) : null,
      },
    });
    // Callable from this process at once (other processes follow the change notification within milliseconds).
    await this.table.refresh();
    return row;
  }

  list(projectId: string): Promise<ProviderModel[]> {
    return this.prisma.providerModel.findMany({ where: { projectId }, orderBy: { createdAt: 'asc' } });
  }

  async remove(projectId: string, name: string): Promise<void> {
    const { count } = await this.prisma.providerModel.deleteMany({ where: { projectId, name } });
    if (count === 0) throw notFound('provider model', name, 'name');
    await this.table.refresh();
  }
}
