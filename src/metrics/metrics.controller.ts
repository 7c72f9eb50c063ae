import { Controller, Get, Header, Headers } from '@nestjs/common';
import { contentType } from 'prom-client';
import { Public } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { ApiDoc } from '../common/http/zod-validation';
import { Config } from '../config/config';
import { metricsTokenMatches } from './metrics-access';
import { Metrics } from './metrics';

/**
 * GET /metrics on the main port when METRICS_TOKEN is set (Prometheus scrapes with `authorization: Bearer`). Not an
 * API key: a scraper must not hold a tenant's key. With only METRICS_PORT set, this route does not exist here.
 */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: Metrics, private readonly config: Config) {}

  @Get()
  @Public()
  @Header('content-type', contentType)
  @ApiDoc({ summary: 'Prometheus metrics (METRICS_TOKEN as a bearer token)', tags: ['operations'] })
  async scrape(@Headers('authorization') authorization: string | undefined): Promise<string> {
    const token = this.config.env.METRICS_TOKEN;
    if (!token) throw new DomainError('not_found', 'Metrics are not served on this port (set METRICS_TOKEN, or scrape METRICS_PORT)');
    if (!metricsTokenMatches(authorization, token)) throw new DomainError('unauthorized', 'Send the metrics token: Authorization: Bearer <METRICS_TOKEN>');
    return this.metrics.text();
  }
}
