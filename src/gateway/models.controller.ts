import { Controller, Delete, Get } from '@nestjs/common';
import { z } from 'zod';
import { ForInferenceKeys, ProjectId } from '../common/auth/auth.decorators';
import { listOf, toList } from '../common/http/pagination';
import { ApiDoc, ZParam } from '../common/http/zod-validation';
import { modelCard } from './model-cards';
import { ModelsService } from './models.service';
import { deletedOf } from '../common/http/deleted';

/** OpenAI's DeleteModelResponse (a deleted model is always deleted: true). */
const deletedModel = deletedOf('model');

/** OpenAI's models API: what the project can call, fine-tune and has fine-tuned (see ModelsService). */
@Controller('v1/models')
export class ModelsController {
  constructor(private readonly models: ModelsService) {}

  @Get()
  @ForInferenceKeys()
  @ApiDoc({ summary: 'List models: callable now (with routing), base models, fine-tuned models', tags: ['models'], response: listOf(modelCard) })
  async list(@ProjectId() projectId: string) {
    return toList(await this.models.list(projectId));
  }

  @Get(':model')
  @ForInferenceKeys()
  @ApiDoc({ summary: 'Retrieve a model', tags: ['models'], response: modelCard })
  get(@ProjectId() projectId: string, @ZParam('model', z.string().min(1)) id: string) {
    return this.models.get(projectId, id);
  }

  @Delete(':model')
  @ApiDoc({ summary: 'Delete a model: undeploys it from every pool (a fine-tuned model also stops being listed; its job and files stay)', tags: ['models'], response: deletedModel })
  async remove(@ProjectId() projectId: string, @ZParam('model', z.string().min(1)) id: string): Promise<z.infer<typeof deletedModel>> {
    await this.models.remove(projectId, id);
    return { id, object: 'model', deleted: true };
  }
}
