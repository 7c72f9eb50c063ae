import { Injectable, Logger } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { JobState } from './job-state';
import { TrainingRuntimes } from './runtime/training-runtimes';
import { TrainingQueue } from './training.queue';

/**
 * The worker's half of cancel. The API only records `cancelled` (keeping the GPUs) and enqueues `job.stop`; here the
 * workload is stopped and removed, and only once the runtime confirms it has stopped are its GPUs freed, so the next
 * job never shares a GPU with it. A stop that fails (engine unreachable) throws `service_unavailable`: the task is
 * retried, the GPUs stay held, and the sweep re-enqueues it if the retries run out.
 */
@Injectable()
export class JobStopper {
  private readonly logger = new Logger(JobStopper.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly state: JobState,
    private readonly queue: TrainingQueue,
    private readonly runtimes: TrainingRuntimes,
    private readonly config: Config,
  ) {}

  async stop(jobId: string): Promise<void> {
    const job = await this.prisma.fineTuningJob.findUnique({ where: { id: jobId } });
    if (!job || job.status !== 'cancelled') return;
    const runtime = await this.runtimes.forJob(job);
    // The stored id, else the label: a run task may have created the workload and not yet recorded it.
    const workloadId = job.workloadId ?? (job.attempt > 0 ? await runtime.find(job.id, job.attempt) : null);
    if (!workloadId && job.attempt > 0 && (await this.queue.isRunActive(job.id, job.attempt))) {
      // The run task may be between "no workload yet" and creating one: freeing now could hand out GPUs it is about
      // to use. Its next look sees `cancelled`; this task comes back and finds the workload by label.
      throw new DomainError('service_unavailable', `the run task of ${job.id} is still starting its workload; stopping it shortly`);
    }
    if (workloadId) {
      await runtime.stop(workloadId, this.config.env.TRAINING_STOP_GRACE_SECONDS);
      await runtime.remove(workloadId).catch((err) => this.logger.warn({ err, jobId, workloadId }, 'could not remove a stopped workload'));
    }
    const released = await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.gpuAllocation.deleteMany({ where: { jobId } });
      await tx.fineTuningJob.updateMany({ where: { id: jobId, status: 'cancelled' }, data: { workloadId: null } });
      return count;
    });
    if (workloadId || released) {
      const gpus = released ? `; its ${released} GPU(s) are free` : '';
      await this.state.event(job, { message: `The training workload has stopped${gpus}`, sourceKey: `stopped:${job.attempt}` });
    }
    if (released) await this.queue.wakeGpuWaiters().catch((err) => this.logger.warn({ err }, 'could not wake jobs waiting for GPUs'));
  }
}
