import { Controller, Get, HttpCode, OnModuleDestroy, Res } from '@nestjs/common';
import type { Response } from 'express';
import Redis from 'ioredis';
import { Public } from '../common/auth/auth.decorators';
import { ApiDoc } from '../common/http/zod-validation';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { redisOptions } from '../queue/redis-options';
import { ObjectStore } from '../storage/object-store';
import { TrainingRuntimes } from '../training/runtime/training-runtimes';

type Check = { status: 'up' } | { status: 'down'; error: string };
const CHECK_TIMEOUT_MS = 2000;

async function check(fn: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS); }),
    ]);
    return { status: 'up' };
  } catch (err) {
    return { status: 'down', error: (err as Error)?.message ?? String(err) };
  } finally {
    clearTimeout(timer);
  }
}

@Controller()
export class HealthController implements OnModuleDestroy {
  private readonly redis: Redis;
  private readonly localDocker: boolean;

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: ObjectStore,
    private readonly runtimes: TrainingRuntimes,
    config: Config,
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
  @ApiDoc({ summary: 'Readiness: Postgres, Redis, S3 and Docker each checked; 503 names what is down', tags: ['health'], public: true })
  async readyz(@Res({ passthrough: true }) res: Response) {
    const report = await this.readiness();
    if (report.down.length) res.status(503);
    return report;
  }

  /** The checks behind /readyz; also what the probe server of roles without the API answers (health-server.ts). */
  async readiness() {
    const [postgres, redis, s3, docker] = await Promise.all([
      check(() => this.prisma.$queryRaw`SELECT 1`),
      check(async () => {
        if (this.redis.status === 'wait' || this.redis.status === 'end') await this.redis.connect().catch(() => undefined);
        return this.redis.ping();
      }),
      check(() => this.store.ping()),
      // A process without a local engine (a pod in Kubernetes) is not unready for lacking one.
      this.localDocker ? check(() => this.runtimes.default().ping()) : null,
    ]);
    const checks = docker ? { postgres, redis, s3, docker } : { postgres, redis, s3 };
    const down = Object.entries(checks).filter(([, c]) => c.status === 'down').map(([name]) => name);
    return { status: down.length ? 'unavailable' : 'ready', down, checks };
  }

  onModuleDestroy() {
    this.redis.disconnect();
  }
}
