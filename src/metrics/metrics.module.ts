import { DynamicModule, Global, Module } from '@nestjs/common';
import { ControlPlaneCollector } from './control-plane.collector';
import { MetricsController } from './metrics.controller';
import { MetricsServer } from './metrics-server';
import { Metrics } from './metrics';

/** Prometheus metrics in every role; the control plane's database-wide gauges only where the worker runs. */
@Global()
@Module({})
export class MetricsModule {
  static register(opts: { worker: boolean; http: boolean }): DynamicModule {
    return {
      module: MetricsModule,
      controllers: opts.http ? [MetricsController] : [],
      providers: [Metrics, MetricsServer, ...(opts.worker ? [ControlPlaneCollector] : [])],
      exports: [Metrics],
    };
  }
}
