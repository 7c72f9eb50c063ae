import { Processor } from '@nestjs/bullmq';
import { Config } from '../config/config';
import { QueueWorker, TaskHandlers } from '../queue/queue-worker';
import { DatasetsService } from './datasets.service';
import { DATASETS_QUEUE, DatasetsQueue, datasetTasks } from './datasets.queue';
import { UploadsService } from './uploads.service';

/**
 * Worker side of datasets: counts deferred token statistics and sweeps expired uploads (aborting their S3 multipart
 * uploads). Registered only in processes that run the worker role.
 */
@Processor(DATASETS_QUEUE, { concurrency: 1 })
export class DatasetsProcessor extends QueueWorker<typeof datasetTasks> {
  protected readonly handlers: TaskHandlers<typeof datasetTasks> = {
    'dataset.count_tokens': (p) => this.datasets.countTokens(p.datasetId),
  };

  constructor(
    private readonly datasets: DatasetsService,
    private readonly uploads: UploadsService,
    private readonly queue: DatasetsQueue,
    private readonly config: Config,
  ) {
    super(DatasetsProcessor.name, datasetTasks);
  }

  protected override sweepIntervalMs(): number {
    return Math.min(this.config.env.QUEUE_SWEEP_INTERVAL_MS, this.config.env.UPLOAD_SWEEP_INTERVAL_SECONDS * 1000);
  }

  /** Redis only carries work: a pending token count whose task is missing is enqueued again; expired uploads go. */
  protected override async sweep(): Promise<number> {
    let added = 0;
    for (const datasetId of await this.datasets.pendingTokenCounts()) added += Number(await this.queue.ensure('dataset.count_tokens', { datasetId }));
    const expired = await this.uploads.sweepExpired();
    if (expired > 0) this.logger.log(`expired ${expired} upload(s) and aborted their S3 parts`);
    return added;
  }
}
