import { Global, Injectable, Logger, Module } from '@nestjs/common';
import type { FineTuningJob } from '../generated/prisma/client';
import type { NewEvent } from './job-state';

export type JobSucceededListener = (job: FineTuningJob, note: (event: NewEvent) => Promise<void>) => Promise<void>;

/**
 * What other features do right after a job succeeded (serving's auto-deploy), without the job runner knowing them:
 * they register here at start; the runner calls `succeeded` after the success transition committed. A listener's
 * failure is logged and never touches the job (it succeeded); listeners tell the user through `note` (job events).
 */
@Injectable()
export class JobHooks {
  private readonly logger = new Logger(JobHooks.name);
  private readonly listeners: JobSucceededListener[] = [];

  onSucceeded(listener: JobSucceededListener): void {
    this.listeners.push(listener);
  }

  async succeeded(job: FineTuningJob, note: (event: NewEvent) => Promise<void>): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await listener(job, note);
      } catch (err) {
        this.logger.warn({ jobId: job.id, error: (err as Error).message }, 'a job-succeeded listener failed');
      }
    }
  }
}

@Global()
@Module({ providers: [JobHooks], exports: [JobHooks] })
export class JobHooksModule {}
