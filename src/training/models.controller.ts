import { Controller, Delete, Get } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { ApiDoc, ZParam } from '../common/http/zod-validation';
import { JobsService } from './jobs.service';
import { ModelCatalog } from './model-catalog';

/** OpenAI's models API: the base models loraplane can fine-tune, and the project's fine-tuned models. */
@Controller('v1/models')
export class ModelsController {
  constructor(private readonly catalog: ModelCatalog, private readonly jobs: JobsService) {}

  @Get()
  @ApiDoc({ summary: 'List base and fine-tuned models', tags: ['models'] })
  async list(@ProjectId() projectId: string) {
    const tuned = await this.jobs.fineTunedModels(projectId);
    const base = this.catalog.all().map((m) => ({ id: m.id, object: 'model', created: m.createdAt, owned_by: 'loraplane', development: m.development }));
    const own = tuned.map((j) => ({ id: j.fineTunedModel!, object: 'model', created: Math.floor(j.finishedAt!.getTime() / 1000), owned_by: j.projectId, parent: j.model, job_id: j.id }));
    return { object: 'list', data: [...base, ...own], has_more: false };
  }

  @Get(':model')
  @ApiDoc({ summary: 'Retrieve a model', tags: ['models'] })
  async get(@ProjectId() projectId: string, @ZParam('model', z.string().min(1)) id: string) {
    const base = this.catalog.find(id);
    if (base) return { id: base.id, object: 'model', created: base.createdAt, owned_by: 'loraplane', development: base.development };
    const job = await this.jobs.fineTunedModel(projectId, id);
    return { id, object: 'model', created: Math.floor(job.finishedAt!.getTime() / 1000), owned_by: job.projectId, parent: job.model, job_id: job.id };
  }

  @Delete(':model')
  @ApiDoc({ summary: 'Delete a fine-tuned model (the job and its adapter files stay)', tags: ['models'] })
  async remove(@ProjectId() projectId: string, @ZParam('model', z.string().min(1)) id: string) {
    await this.jobs.deleteModel(projectId, id);
    return { id, object: 'model', deleted: true };
  }
}
