import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Config } from '../config/config';
import { ChangeFeed } from '../db/change-feed';
import { ReadThroughCache } from '../db/read-through-cache';

/**
 * Jobs read by id are polled hard (a CI pipeline waiting for its job, a dashboard): the api answers them from
 * memory. Any committed change to a job (the FineTuningJob trigger on the change feed) forgets every entry within
 * milliseconds, a status change made in this process forgets them at once (JobState), and no entry outlives
 * MAX_AGE_MS: a read is never staler than that even when a notification is lost.
 */
export const JOB_READ_MAX_AGE_MS = 1000;

@Injectable()
export class JobReadCache extends ReadThroughCache implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(private readonly feed: ChangeFeed, private readonly config: Config) {
    super(new Set(['FineTuningJob']), JOB_READ_MAX_AGE_MS);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.runsApi) await this.start(this.feed);
  }

  onModuleDestroy(): void {
    this.stop();
  }
}
