import { getQueueToken } from '@nestjs/bullmq';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Queue } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import { PrismaService } from '../db/prisma.service';
import { DATASETS_QUEUE } from '../datasets/datasets.queue';
import { EVALS_QUEUE } from '../evals/evals.queue';
import { SERVING_QUEUE } from '../serving/serving.queue';
import { TRAINING_QUEUE } from '../training/training.queue';
import { WEBHOOKS_QUEUE } from '../webhooks/webhooks.queue';
import { Metrics } from './metrics';

const QUEUES = [DATASETS_QUEUE, TRAINING_QUEUE, SERVING_QUEUE, WEBHOOKS_QUEUE, EVALS_QUEUE];
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'prioritized'] as const;

/**
 * The control plane's state as gauges, read at scrape time (a few grouped queries and one count per queue), so the
 * figures are never stale and cost nothing between scrapes. Registered by the worker role only: every api or
 * gateway replica exporting the same database-wide figures would multiply them in a sum.
 */
@Injectable()
export class ControlPlaneCollector implements OnModuleInit {
  constructor(private readonly metrics: Metrics, private readonly prisma: PrismaService, private readonly moduleRef: ModuleRef) {}

  onModuleInit() {
    const registers = [this.metrics.registry];
    this.workGauges(registers);
    this.servingGauges(registers);
  }

  /** Queued tasks, jobs by status, GPUs by host. */
  private workGauges(registers: Registry[]) {
    const prisma = this.prisma;
    const queues = QUEUES.map((name) => ({ name, queue: this.moduleRef.get<Queue>(getQueueToken(name), { strict: false }) }));

    new Gauge({
      name: 'loraplane_queue_tasks',
      help: 'Tasks in each work queue, by state',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        await Promise.all(
          queues.map(async ({ name, queue }) => {
            const counts = await queue.getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          }),
        );
      },
    });

    new Gauge({
      name: 'loraplane_fine_tuning_jobs',
      help: 'Fine-tuning jobs by status',
      labelNames: ['status'] as const,
      registers,
      async collect() {
        this.reset();
        const rows = await prisma.fineTuningJob.groupBy({ by: ['status'], _count: { _all: true } });
        for (const r of rows) this.set({ status: r.status }, r._count._all);
      },
    });

    new Gauge({
      name: 'loraplane_gpus',
      help: 'GPUs of enabled hosts, by host and state (allocated to a job or free)',
      labelNames: ['host', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        const hosts = await prisma.gpuHost.findMany({ where: { enabled: true }, select: { name: true, gpus: true, _count: { select: { allocations: true } } } });
        for (const h of hosts) {
          const total = Array.isArray(h.gpus) ? h.gpus.length : 0;
          this.set({ host: h.name, state: 'allocated' }, h._count.allocations);
          this.set({ host: h.name, state: 'free' }, Math.max(0, total - h._count.allocations));
        }
      },
    });
  }

  /** Replicas by status, and per pool the reconciler's lag and the replicas behind the desired revision. */
  private servingGauges(registers: Registry[]) {
    const prisma = this.prisma;

    new Gauge({
      name: 'loraplane_serving_replicas',
      help: 'Serving replicas by status (ready, not_ready, unreachable, pending)',
      labelNames: ['status'] as const,
      registers,
      async collect() {
        this.reset();
        const rows = await prisma.replica.groupBy({ by: ['status'], _count: { _all: true } });
        for (const r of rows) this.set({ status: r.status }, r._count._all);
      },
    });

    new Gauge({
      name: 'loraplane_reconciler_lag_seconds',
      help: "Per pool: the age of the reconciler's oldest view of a replica (about RECONCILE_INTERVAL_MS when healthy)",
      labelNames: ['project', 'pool'] as const,
      registers,
      async collect() {
        this.reset();
        const rows = await prisma.$queryRaw<{ project: string; pool: string; lag: number | null }[]>`
          SELECT pr."slug" AS project, p."name" AS pool, EXTRACT(EPOCH FROM (now() - MIN(COALESCE(r."lastSeenAt", r."createdAt"))))::float8 AS lag
          FROM "ServingPool" p JOIN "Project" pr ON pr."id" = p."projectId" JOIN "Replica" r ON r."poolId" = p."id"
          GROUP BY pr."slug", p."name"`;
        for (const r of rows) this.set({ project: r.project, pool: r.pool }, Math.max(0, Number(r.lag ?? 0)));
      },
    });

    new Gauge({
      name: 'loraplane_serving_replicas_out_of_sync',
      help: "Per pool: replicas that have not reported the pool's latest desired revision",
      labelNames: ['project', 'pool'] as const,
      registers,
      async collect() {
        this.reset();
        const rows = await prisma.$queryRaw<{ project: string; pool: string; n: number }[]>`
          SELECT pr."slug" AS project, p."name" AS pool,
            COUNT(*) FILTER (WHERE COALESCE((r."observed"->>'generation')::int, -1) <> p."revision")::int AS n
          FROM "ServingPool" p JOIN "Project" pr ON pr."id" = p."projectId" JOIN "Replica" r ON r."poolId" = p."id"
          GROUP BY pr."slug", p."name"`;
        for (const r of rows) this.set({ project: r.project, pool: r.pool }, Number(r.n));
      },
    });
  }
}
