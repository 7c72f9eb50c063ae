import { Injectable, Logger } from '@nestjs/common';
import { SecretBox } from '../common/secret-box';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { Prisma, Replica } from '../generated/prisma/client';
import { ObjectStore } from '../storage/object-store';
import { AgentCallFailed, AgentClient, AgentDesired, AgentReport } from './agent-client';
import { DesiredEntry, desiredForReplicas, PlannedVersion } from './desired-state';
import { servedName } from './served-name';
import { sameAnswer, VllmClient } from './vllm-client';

type FileRef = AgentDesired['adapters'][number]['files'][number];

/** Presigned URLs handed to agents live this long: enough to download, short enough not to matter if leaked. */
const AGENT_URL_TTL_SECONDS = 15 * 60;
/** A pass stops following an agent's progress after this long; the next pass picks it up. */
const SETTLE_MS = 10_000;

/**
 * Desired vs observed, for one pool: every replica that is due gets its desired adapters (with fresh presigned
 * URLs) from the pool's desired state, in parallel, and the pass follows each agent until its adapters are loaded or
 * refused, recording the report. A replica whose agent does not answer backs off exponentially (capped at twice the
 * reconcile interval, so one that returns is refilled within a few intervals). After a version first loads
 * somewhere, the no-effect check compares one probe prompt through the base model and through the adapter.
 */
@Injectable()
export class Reconciler {
  private readonly logger = new Logger(Reconciler.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly store: ObjectStore,
    private readonly agents: AgentClient,
    private readonly vllm: VllmClient,
    private readonly secrets: SecretBox,
    private readonly config: Config,
  ) {}

  async reconcilePool(poolId: string): Promise<void> {
    // A change committed while a pass runs bumps the revision: go again until a pass saw the latest state.
    for (let pass = 0; pass < 5; pass++) {
      const revision = await this.pass(poolId);
      if (revision === null) return;
      const now = await this.prisma.servingPool.findUnique({ where: { id: poolId }, select: { revision: true } });
      if (!now || now.revision === revision) return;
    }
  }

  /** One pass; returns the revision it applied (null when the pool is gone). */
  private async pass(poolId: string): Promise<number | null> {
    const pool = await this.prisma.servingPool.findUnique({
      where: { id: poolId },
      include: { replicas: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }, deployments: { select: { versionId: true } }, aliases: true },
    });
    if (!pool) return null;
    const ids = new Set([...pool.deployments.map((d) => d.versionId), ...pool.aliases.flatMap((a) => [a.versionId, a.canaryVersionId ?? a.versionId])]);
    const rows = await this.prisma.adapterVersion.findMany({ where: { id: { in: [...ids] } }, include: { adapter: { select: { name: true } } } });
    const planned = new Map<string, PlannedVersion>(rows.map((v) => [v.id, { id: v.id, adapter: v.adapter.name, version: v.version }]));
    const plan = desiredForReplicas(
      pool.replicas.map((r) => r.id),
      pool.deployments.map((d) => planned.get(d.versionId)!),
      pool.aliases.map((a) => ({
        adapter: planned.get(a.versionId)!.adapter,
        version: planned.get(a.versionId)!,
        canary: a.canaryVersionId ? planned.get(a.canaryVersionId)! : null,
        canaryReplicas: a.canaryReplicas,
      })),
    );
    const files = new Map<string, FileRef[]>();
    for (const v of rows) {
      const list = v.files as unknown as { name: string; bytes: number; sha256: string }[];
      files.set(v.id, await Promise.all(list.map(async (f) => ({ ...f, url: await this.store.presignGet(v.s3Prefix + f.name, AGENT_URL_TTL_SECONDS) }))));
    }
    const now = Date.now();
    const due = pool.replicas.filter((r) => !r.nextAttemptAt || r.nextAttemptAt.getTime() <= now);
    const reports = await Promise.all(due.map((r) => this.syncReplica(pool.revision, r, plan.get(r.id)!, files)));
    await this.checkForNoEffect(pool, due, reports, planned);
    return pool.revision;
  }

  private async syncReplica(revision: number, replica: Replica, desired: DesiredEntry[], files: Map<string, FileRef[]>): Promise<AgentReport | null> {
    const token = this.secrets.open(replica.agentTokenSealed, { purpose: 'replica.agent_token', id: replica.id });
    const doc: AgentDesired = {
      generation: revision,
      adapters: desired.map((e) => ({ name: e.name, version: e.servedVersion, files: files.get(e.versionId)! })),
    };
    try {
      await this.agents.putDesired(replica.agentUrl, token, doc);
      const report = await this.settle(replica.agentUrl, token, desired, revision);
      const refused = report.adapters.filter((a) => a.state === 'error');
      await this.prisma.replica.update({
        where: { id: replica.id },
        data: {
          status: report.vllm.reachable === false ? 'not_ready' : 'ready',
          observed: report as unknown as Prisma.InputJsonValue,
          lastError: report.vllm.reachable === false ? `vLLM unreachable: ${report.vllm.error}` : refused.length ? refused.map((a) => `${a.name}: ${a.error}`).join('; ') : null,
          lastSeenAt: new Date(),
          failures: 0,
          nextAttemptAt: null,
        },
      });
      return report;
    } catch (err) {
      if (!(err instanceof AgentCallFailed)) throw err;
      const failures = replica.failures + 1;
      const interval = this.config.env.RECONCILE_INTERVAL_MS;
      const delay = Math.min(interval * 2 ** (failures - 1), 2 * interval, 60_000);
      await this.prisma.replica.update({
        where: { id: replica.id },
        data: { status: 'unreachable', lastError: err.message, failures, nextAttemptAt: new Date(Date.now() + delay) },
      });
      if (failures === 1) this.logger.warn({ replica: replica.name, error: err.message }, 'adapter agent unreachable; backing off');
      return null;
    }
  }

  /** Follows the agent until it works on this revision and every desired name is loaded or refused (or time is up). */
  private async settle(agentUrl: string, token: string, desired: DesiredEntry[], revision: number): Promise<AgentReport> {
    const deadline = Date.now() + Math.min(SETTLE_MS, this.config.env.AGENT_TIMEOUT_MS);
    for (;;) {
      const report = await this.agents.status(agentUrl, token);
      const done =
        report.generation >= revision &&
        (report.vllm.reachable === false ||
          desired.every((d) => report.adapters.some((a) => a.name === d.name && a.version === d.servedVersion && (a.state === 'loaded' || a.state === 'error'))));
      if (done || Date.now() > deadline) return report;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * MoE models have had adapters that load and change nothing. Once per deployment, on a replica that reports the
   * version loaded: the probe prompt through the base model and through `adapter@vN`; identical answers (text and
   * log-probabilities) leave a warning on the deployment.
   */
  private async checkForNoEffect(
    pool: { id: string; servedModelName: string; probePrompt: string },
    replicas: Replica[],
    reports: (AgentReport | null)[],
    planned: Map<string, PlannedVersion>,
  ): Promise<void> {
    const pending = await this.prisma.deployment.findMany({ where: { poolId: pool.id, probe: { equals: Prisma.DbNull } } });
    for (const dep of pending) {
      const v = planned.get(dep.versionId);
      if (!v) continue;
      const name = servedName(v.adapter, v.version);
      const at = replicas.findIndex((_, i) => reports[i]?.adapters.some((a) => a.name === name && a.state === 'loaded'));
      if (at < 0) continue;
      const replica = replicas[at];
      try {
        const [base, tuned] = await Promise.all([
          this.vllm.probe(replica.vllmUrl, pool.servedModelName, pool.probePrompt),
          this.vllm.probe(replica.vllmUrl, name, pool.probePrompt),
        ]);
        const identical = sameAnswer(base, tuned);
        await this.prisma.deployment.update({
          where: { id: dep.id },
          data: {
            probe: { replica: replica.name, prompt: pool.probePrompt, base: base.content, adapter: tuned.content, identical, at: new Date().toISOString() },
            warning: identical
              ? `no effect: ${name} answered the probe prompt exactly as the base model did (text and log-probabilities); the adapter may not be applied by this vLLM build`
              : null,
          },
        });
        if (identical) this.logger.warn({ pool: pool.id, adapter: name }, 'adapter loaded but changed nothing on the probe prompt');
      } catch (err) {
        this.logger.warn({ adapter: name, replica: replica.name, error: (err as Error).message }, 'no-effect probe failed; will try again next pass');
      }
    }
  }
}
