import { Processor } from '@nestjs/bullmq';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { QueueWorker, TaskHandlers } from '../queue/queue-worker';
import { Reconciler } from './reconciler';
import { SERVING_QUEUE, ServingQueue, servingTasks } from './serving.queue';

/**
 * Worker side of serving: runs reconcile passes (several pools at once, one pass per pool at a time thanks to the
 * task id) and, every RECONCILE_INTERVAL_MS, asks for a pass over every pool, which is how a replica that restarted
 * empty, or came back after an outage, gets its adapters again without anyone asking. A pass is not retried by
 * BullMQ: the next periodic pass is its retry.
 */
@Processor(SERVING_QUEUE, { concurrency: 8 })
export class ServingProcessor extends QueueWorker<typeof servingTasks> {
  protected readonly handlers: TaskHandlers<typeof servingTasks> = {
    'pool.reconcile': (p) => this.reconciler.reconcilePool(p.poolId),
  };

  constructor(
    private readonly reconciler: Reconciler,
    private readonly queue: ServingQueue,
    private readonly prisma: PrismaService,
    private readonly config: Config,
  ) {
    super(ServingProcessor.name, servingTasks);
  }

  protected override sweepIntervalMs(): number {
    return this.config.env.RECONCILE_INTERVAL_MS;
  }

  protected override async sweep(): Promise<number> {
    const pools = await this.prisma.servingPool.findMany({ select: { id: true } });
    for (const p of pools) await this.queue.reconcileSoon(p.id);
    return 0; // a pass per pool is asked for every time, not a missing entry: nothing to report
  }
}
