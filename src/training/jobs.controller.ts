import { Controller, Get, Post, Query } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { pageQuery, toPage } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { toEventObject, toJobObject } from './job-views';
import { createJobBody, CreateJobBody, JobsService } from './jobs.service';

const jobId = z.string().min(1);

/** OpenAI's fine-tuning jobs API. */
@Controller('v1/fine_tuning/jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Post()
  @ApiDoc({ summary: 'Create a fine-tuning job (LoRA); `lora` is a loraplane extension', tags: ['fine-tuning'] })
  async create(@ProjectId() projectId: string, @ZBody(createJobBody) body: CreateJobBody) {
    return toJobObject(await this.jobs.create(projectId, body));
  }

  @Get()
  @ApiDoc({ summary: 'List fine-tuning jobs, newest first; filter with metadata[k]=v', tags: ['fine-tuning'] })
  async list(@ProjectId() projectId: string, @ZQuery(pageQuery) page: z.infer<typeof pageQuery>, @Query() raw: Record<string, unknown>) {
    return toPage(await this.jobs.list(projectId, page, metadataFilter(raw)), page.limit, toJobObject);
  }

  @Get(':fine_tuning_job_id')
  @ApiDoc({ summary: 'Retrieve a fine-tuning job', tags: ['fine-tuning'] })
  async get(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string) {
    return toJobObject(await this.jobs.get(projectId, id));
  }

  @Post(':fine_tuning_job_id/cancel')
  @ApiDoc({ summary: 'Cancel a fine-tuning job', tags: ['fine-tuning'] })
  async cancel(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string) {
    return toJobObject(await this.jobs.cancel(projectId, id));
  }

  @Get(':fine_tuning_job_id/events')
  @ApiDoc({ summary: "A job's events, newest first (messages and metrics: the loss curve)", tags: ['fine-tuning'] })
  async events(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string, @ZQuery(pageQuery) page: z.infer<typeof pageQuery>) {
    return toPage(await this.jobs.events(projectId, id, page), page.limit, toEventObject);
  }
}

/** `metadata[k]=v` arrives from Express's query parser either nested ({metadata:{k:v}}) or flat ('metadata[k]'). */
function metadataFilter(raw: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const nested = raw.metadata;
  if (nested && typeof nested === 'object') for (const [k, v] of Object.entries(nested)) if (typeof v === 'string') out[k] = v;
  for (const [k, v] of Object.entries(raw)) {
    const m = /^metadata\[(.+)\]$/.exec(k);
    if (m && typeof v === 'string') out[m[1]] = v;
  }
  return out;
}
