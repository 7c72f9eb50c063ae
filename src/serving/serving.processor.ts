import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Reconciler } from './reconciler';
import { SERVING_QUEUE, ServingQueue, ServingTask, ServingTaskPayload, servingTasks } from './serving.queue';

type Handlers = { [T in ServingTask]: (payload: ServingTaskPayload<T>) => Promise<void> };

/**
 * Worker side of serving: runs reconcile passes (several pools at once, one pass per pool at a time thanks to the
 * task id) and, every RECONCILE_INTERVAL_MS, asks for a pass over every pool, which is how a replica that restarted
 * empty, or came back after an outage, gets its adapters again without anyone asking.
 */
@Processor(SERVING_QUEUE, { concurrency: 8 })
export class ServingProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ServingProcessor.name);
  private readonly handlers: Handlers;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly reconciler: Reconciler,
    private readonly queue: ServingQueue,
    private readonly prisma: PrismaService,
    private readonly config: Config,
  ) {
    super();
    this.handlers = { 'pool.reconcile': (p) => this.reconciler.reconcilePool(p.poolId) };
  }

  async process(job: Job): Promise<void> {
    const name = job.name as ServingTask;
    const schema = servingTasks[name];
    if (!schema) throw new UnrecoverableError(`unknown task '${job.name}'`);
    const payload = schema.safeParse(job.data);
    if (!payload.success) throw new UnrecoverableError(`bad payload for ${name}: ${payload.error.message}`);
    await this.handlers[name](payload.data);
  }

  onApplicationBootstrap() {
    const tick = async () => {
      try {
        const pools = await this.prisma.servingPool.findMany({ select: { id: true } });
        for (const p of pools) await this.queue.reconcileSoon(p.id);
      } catch (err) {
        this.logger.warn({ err }, 'could not schedule reconcile passes; will try again');
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), this.config.env.RECONCILE_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy() {
    if (this.timer) clearInterval(this.timer);
  }
}
