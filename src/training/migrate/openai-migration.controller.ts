import { Controller, HttpCode, Post } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../../common/auth/auth.decorators';
import { ApiDoc, ZBody } from '../../common/http/zod-validation';
import { migrationPlanObject, OpenAIMigration } from './openai-migration.service';

const planBody = z
  .object({
    api_key: z.string().min(1).max(4096).describe("the OpenAI key: used for this request's reads only, never stored or logged"),
    base_model: z.string().min(1).max(200).default('gpt-oss-20b').describe('the base the equivalent jobs are planned on'),
    jobs: z.array(z.string().min(1).max(200)).min(1).max(100).optional().describe("OpenAI job ids (default: every succeeded job)"),
  })
  .strict();

/** Migration from OpenAI fine-tuning: a dry run that copies the files and plans the jobs. A loraplane extension. */
@Controller('v1/migrations/openai')
export class OpenAIMigrationController {
  constructor(private readonly migration: OpenAIMigration) {}

  @Post('plan')
  @HttpCode(200)
  @ApiDoc({ summary: "Dry run: list the OpenAI account's fine-tuning jobs, copy their files into datasets (validated), and plan equivalent jobs with their cost; starts nothing", tags: ['fine-tuning'], response: migrationPlanObject })
  async plan(@ProjectId() projectId: string, @ZBody(planBody) b: z.infer<typeof planBody>) {
    return this.migration.plan(projectId, { apiKey: b.api_key, baseModel: b.base_model, jobs: b.jobs });
  }
}
