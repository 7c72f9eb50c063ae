import { Module } from '@nestjs/common';
import { JobReadCache } from './job-read-cache';

/** Imported by the modules that read jobs (training, the models API): one cache per process. */
@Module({ providers: [JobReadCache], exports: [JobReadCache] })
export class JobReadCacheModule {}
