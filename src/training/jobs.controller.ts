import { Controller, Get, Headers, HttpCode, MessageEvent, Post, Query, Sse, SseSignal } from '@nestjs/common';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { CurrentPrincipal, isAdmin, Principal, ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { pageOf, pageQuery, toPage } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { JobMetricsService, metricsHistoryObject, MetricsQuery, metricsQuery } from './job-metrics.service';
import { jobEstimateObject } from './job-cost';
import { FineTuningJob } from '../generated/prisma/client';
import { checkpointObject, JobObject, jobEventObject, jobObject, toCheckpointObject, toEventObject, toJobObject } from './job-views';
import { createJobBody, CreateJobBody, eventsQuery, EventsQuery, idempotencyKey, JobsService } from './jobs.service';

const jobId = z.string().min(1);
const estimateObject = jobEstimateObject.extend({ object: z.literal('fine_tuning.job.estimate'), model: z.string() });

/** OpenAI's fine-tuning jobs API. */
@Controller('v1/fine_tuning/jobs')
export class JobsController {
  /**
   * The answer for each job row `get` served, built once per row: `jobs.get` answers polls from a read cache whose
   * rows are shared and never changed (a change reads a new row), and building the view (the JSON columns parsed and
   * checked) was ~15 us of a ~380 us request under load.
   */
  private readonly views = new WeakMap<FineTuningJob, JobObject>();

  constructor(
    private readonly jobs: JobsService,
    private readonly metrics: JobMetricsService,
  ) {}

  @Post()
  @HttpCode(200) // OpenAI answers a create with 200; clients generated from its document expect it
  @ApiDoc({ summary: 'Create a fine-tuning job (LoRA); `lora` is a loraplane extension', tags: ['fine-tuning'], response: jobObject })
  async create(@ProjectId() projectId: string, @CurrentPrincipal() caller: Principal, @ZBody(createJobBody) body: CreateJobBody, @Headers('idempotency-key') key?: string) {
    return toJobObject(await this.jobs.create(projectId, body, parseIdempotencyKey(key), { admin: isAdmin(caller) }));
  }

  @Post('estimate')
  @HttpCode(200) // a dry run creates nothing
  @ApiDoc({ summary: 'Dry run: validate a create body and estimate its tokens, GPU hours and cost; creates nothing', tags: ['fine-tuning'], response: estimateObject })
  async estimate(@ProjectId() projectId: string, @ZBody(createJobBody) body: CreateJobBody): Promise<z.infer<typeof estimateObject>> {
    const plan = await this.jobs.plan(projectId, body);
    return { object: 'fine_tuning.job.estimate', model: plan.model.id, method: plan.methodType, hyperparameters: plan.hp, ...plan.estimate };
  }

  @Get()
  @ApiDoc({ summary: 'List fine-tuning jobs, newest first; filter with metadata[k]=v', tags: ['fine-tuning'], response: pageOf(jobObject) })
  async list(@ProjectId() projectId: string, @ZQuery(pageQuery) page: z.infer<typeof pageQuery>, @Query() raw: Record<string, unknown>) {
    return toPage(await this.jobs.list(projectId, page, metadataFilter(raw)), page.limit, toJobObject);
  }

  @Get(':fine_tuning_job_id')
  @ApiDoc({ summary: 'Retrieve a fine-tuning job', tags: ['fine-tuning'], response: jobObject })
  async get(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string): Promise<JobObject> {
    const job = await this.jobs.get(projectId, id);
    let view = this.views.get(job);
    if (!view) this.views.set(job, (view = toJobObject(job)));
    return view;
  }

  @Post(':fine_tuning_job_id/cancel')
  @HttpCode(200) // as OpenAI's document says
  @ApiDoc({ summary: 'Cancel a fine-tuning job', tags: ['fine-tuning'], response: jobObject })
  async cancel(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string) {
    return toJobObject(await this.jobs.cancel(projectId, id));
  }

  @Get(':fine_tuning_job_id/checkpoints')
  @ApiDoc({ summary: "A job's checkpoints, newest step first", tags: ['fine-tuning'], response: pageOf(checkpointObject) })
  async checkpoints(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string, @ZQuery(pageQuery) page: z.infer<typeof pageQuery>) {
    const { job, rows, slug } = await this.jobs.checkpointsWithSlug(projectId, id, page);
    return toPage(rows, page.limit, (c) => toCheckpointObject(c, job, slug));
  }

  @Sse(':fine_tuning_job_id/events/stream')
  @ApiDoc({ summary: "Server-sent events: the job's events live, oldest first (resumes after Last-Event-ID); ends with a `done` event", tags: ['fine-tuning'] })
  async stream(
    @ProjectId() projectId: string,
    @ZParam('fine_tuning_job_id', jobId) id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @SseSignal() signal: AbortSignal,
  ): Promise<Observable<MessageEvent>> {
    await this.jobs.get(projectId, id); // a 404 is an ordinary error response, before the stream opens
    const live = this.jobs.followEvents(projectId, id, lastEventId, signal);
    return new Observable<MessageEvent>((sub) => {
      (async () => {
        for await (const item of live) {
          if (item.kind === 'event') sub.next({ id: item.event.id, type: 'event', data: toEventObject(item.event) });
          else sub.next({ type: 'done', data: { id: item.job.id, status: item.job.status } });
        }
        sub.complete();
      })().catch((err) => sub.error(err));
      return () => void live.return(undefined);
    });
  }

  @Get(':fine_tuning_job_id/metrics')
  @ApiDoc({
    summary: "A job's metric history as columns (step, losses, learning rate, tokens/s), oldest first, up to 100,000 points a page; follow events/stream from `last_event_id` for newer ones",
    tags: ['fine-tuning'],
    response: metricsHistoryObject,
  })
  async metricHistory(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string, @ZQuery(metricsQuery) query: MetricsQuery) {
    return this.metrics.history(projectId, id, query);
  }

  @Get(':fine_tuning_job_id/events')
  @ApiDoc({ summary: "A job's events, newest first (messages and metrics: the loss curve); `type` keeps one kind", tags: ['fine-tuning'], response: pageOf(jobEventObject) })
  async events(@ProjectId() projectId: string, @ZParam('fine_tuning_job_id', jobId) id: string, @ZQuery(eventsQuery) page: EventsQuery) {
    return toPage(await this.jobs.events(projectId, id, page), page.limit, toEventObject);
  }
}

function parseIdempotencyKey(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const parsed = idempotencyKey.safeParse(raw);
  if (!parsed.success) throw new DomainError('invalid_request', `Idempotency-Key: ${parsed.error.issues[0].message} (1-255 characters)`, 'Idempotency-Key');
  return parsed.data;
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
