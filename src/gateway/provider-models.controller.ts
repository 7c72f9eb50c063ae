import { Controller, Delete, Get, Post } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { listOf, toList } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam } from '../common/http/zod-validation';
import { ProviderModelsService } from './provider-models.service';
import { deletedProviderModel, providerModelObject, providerModelView } from './provider-models.views';

const modelName = z.string().min(1).max(200).regex(/^[^\s/]+$/, 'no spaces or slashes');
const createProviderModel = z.object({
  /** What clients send as `model`. */
  name: modelName,
  base_url: z.string().max(2000).url().regex(/^https?:\/\//i, 'must be an http(s) URL (up to /v1)'),
  /** The provider's id for the model; defaults to name. */
  model: z.string().min(1).max(200).optional(),
  api_key: z.string().min(1).max(1000).optional(),
});

/** External OpenAI-compatible models a project calls through the gateway (their keys are never shown again). */
@Controller('v1/provider_models')
export class ProviderModelsController {
  constructor(private readonly providers: ProviderModelsService) {}

  @Post()
  @ApiDoc({ summary: 'Configure a provider model: clients then call it by name through /v1/chat/completions', tags: ['models'], response: providerModelObject })
  async create(@ProjectId() projectId: string, @ZBody(createProviderModel) b: z.infer<typeof createProviderModel>) {
    return providerModelView(await this.providers.create(projectId, { name: b.name, baseUrl: b.base_url, upstreamModel: b.model, apiKey: b.api_key }));
  }

  @Get()
  @ApiDoc({ summary: "List the project's provider models (never their keys)", tags: ['models'], response: listOf(providerModelObject) })
  async list(@ProjectId() projectId: string) {
    return toList((await this.providers.list(projectId)).map(providerModelView));
  }

  @Delete(':name')
  @ApiDoc({ summary: 'Remove a provider model', tags: ['models'], response: deletedProviderModel })
  async remove(@ProjectId() projectId: string, @ZParam('name', modelName) name: string): Promise<z.infer<typeof deletedProviderModel>> {
    await this.providers.remove(projectId, name);
    return { object: 'provider_model.deleted', name, deleted: true };
  }
}
