import { Controller, Get, HttpCode, Logger, OnModuleDestroy, Res } from '@nestjs/common';
import type { Response } from 'express';
import Redis from 'ioredis';
import { Public } from '../common/auth/auth.decorators';
import { newId } from '../common/ids';
import { ApiDoc } from '../common/http/zod-validation';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { redisOptions } from '../queue/redis-options';
import { ObjectStore } from '../storage/object-store';
import { TrainingRuntimes } from '../training/runtime/training-runtimes';

/** A down check carries an error id, not the driver's text (the endpoint is public): the detail is in the log. */
type Check = { status: 'up' } | { status: 'down'; error_id: string };
const CHECK_TIMEOUT_MS = 2000;

@Controller()
export class HealthController implements OnModuleDestroy {
  private readonly logger = new Logger(HealthController.name);
  private readonly redis: Redis;
  private readonly localDocker: boolean;

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: ObjectStore,
    private readonly runtimes: TrainingRuntimes,
    private readonly config: Config,
  ) {
    this.localDocker = config.env.LOCAL_DOCKER_ENGINE;
    // A dedicated connection that fails fast: readiness must answer even while Redis is away.
    this.redis = new Redis({ ...redisOptions(config.env.REDIS_URL), lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: CHECK_TIMEOUT_MS, enableOfflineQueue: false });
    this.redis.on('error', () => undefined); // reported by /readyz, not as an unhandled event
  }

  @Get('healthz')
  @Public()
  @ApiDoc({ summary: 'Liveness: the process answers', tags: ['health'], public: true })
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @Public()
  @HttpCode(200)
  @ApiDoc({ summary: "Readiness: what this process's role uses (Postgres, Redis, S3; Docker where it runs the worker); 503 names what is down", tags: ['health'], public: true })
  async readyz(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness();
    if (report.down.length) res.status(503);
    return report;
  }

  /** The checks behind /readyz; also what the probe server of roles without the API answers (health-server.ts). */
  async readiness() {
    const probes: Record<string, () => Promise<unknown>> = {
      postgres: () => this.prisma.$queryRaw`SELECT 1`,
      redis: async () => {
        if (this.redis.status === 'wait' || this.redis.status === 'end') await this.redis.connect().catch(() => undefined);
        return this.redis.ping();
      },
      s3: () => this.store.ping(),
      // Only the worker starts and stops training workloads, and only with a local engine (not a pod in Kubernetes):
      // an api-only process needs no engine.
      ...(this.config.runsWorker && this.localDocker ? { docker: () => this.runtimes.default().ping() } : {}),
    };
    const results = await Promise.all(Object.entries(probes).map(async ([name, probe]) => [name, await this.check(name, probe)] as const));
    const checks = Object.fromEntries(results);
    const down = results.filter(([, c]) => c.status === 'down').map(([name]) => name);
    return { status: down.length ? 'unavailable' : 'ready', down, checks };
  }

  private async check(name: string, fn: () => Promise<unknown>): Promise<Check> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS); }),
      ]);
      return { status: 'up' };
    } catch (err) {
      const errorId = newId.error();
      this.logger.warn({ err, check: name, errorId }, 'readiness check failed');
      return { status: 'down', error_id: errorId };
    } finally {
      clearTimeout(timer);
    }
  }

  onModuleDestroy() {
    this.redis.disconnect();
  }
}
