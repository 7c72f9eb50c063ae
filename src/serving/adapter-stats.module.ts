import { Module } from '@nestjs/common';
import { AdapterStats } from './adapter-stats';

/** The per-adapter figures store, shared by the gateway (writes) and serving's API (reads). */
@Module({ providers: [AdapterStats], exports: [AdapterStats] })
export class AdapterStatsModule {}
