import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';
import { DatasetsService } from './datasets.service';
import { DATASETS_QUEUE, DatasetsQueue, DatasetTask, DatasetTaskPayload, datasetTasks } from './datasets.queue';
import { UploadsService } from './uploads.service';

type Handlers = { [T in DatasetTask]: (payload: DatasetTaskPayload<T>) => Promise<void> };

/**
 * Worker side of datasets: counts deferred token statistics and sweeps expired uploads (aborting their S3 multipart
 * uploads). Registered only in processes that run the worker role.
 */
@Processor(DATASETS_QUEUE, { concurrency: 1 })
export class DatasetsProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(DatasetsProcessor.name);
  private readonly handlers: Handlers;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;

  constructor(
    private readonly datasets: DatasetsService,
    private readonly uploads: UploadsService,
    private readonly queue: DatasetsQueue,
    private readonly config: Config,
  ) {
    super();
    this.handlers = { 'dataset.count_tokens': (p) => this.datasets.countTokens(p.datasetId) };
  }

  async process(job: Job): Promise<void> {
    const name = job.name as DatasetTask;
    const schema = datasetTasks[name];
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    try {
      await this.handlers[name](payload.data);
    } catch (err) {
      if (err instanceof DomainError && err.code !== 'service_unavailable') throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  /** Redis only carries work: pending token counts are re-enqueued from Postgres at start. */
  async onApplicationBootstrap() {
    for (const datasetId of await this.datasets.pendingTokenCounts()) await this.queue.enqueue('dataset.count_tokens', { datasetId });
    const every = this.config.env.UPLOAD_SWEEP_INTERVAL_SECONDS * 1000;
    this.sweepTimer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = this.uploads
        .sweepExpired()
        .then((n) => {
          if (n > 0) this.logger.log(`expired ${n} upload(s) and aborted their S3 parts`);
        })
        .catch((err: unknown) => this.logger.warn({ err }, 'upload sweep failed; will try again'))
        .finally(() => (this.sweeping = null));
    }, every);
    this.sweepTimer.unref();
  }

  async onModuleDestroy() {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sweeping;
  }
}
