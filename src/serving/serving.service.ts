import { Injectable } from '@nestjs/common';
import { DomainError, notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { TargetGuard } from '../common/net/target-guard';
import { SecretBox } from '../common/secret-box';
import { Quotas } from '../projects/quotas';
import { PrismaService } from '../db/prisma.service';
import { AliasAction, Prisma, ServingPool } from '../generated/prisma/client';
import { ModelCatalog } from '../training/model-catalog';
import { WebhookOutbox } from '../webhooks/webhook-outbox';
import { AdapterStats } from './adapter-stats';
import { assertCompatible } from './preflight';
import { PromotionGate } from './promotion-gate';
import { ServingQueue } from './serving.queue';
import { servedName } from './served-name';

type Tx = Prisma.TransactionClient;

export interface CreatePool {
  name: string;
  baseModel: string;
  servedModelName?: string;
  maxLoraRank: number;
  maxLoras: number;
  maxCpuLoras?: number;
  supportedTargets?: string[];
  probePrompt?: string;
  usdPerGpuHour?: number;
  gpusPerReplica?: number;
  autoDeploy?: boolean;
}

export interface AddReplica {
  name: string;
  vllmUrl: string;
  agentUrl: string;
  agentToken: string;
}

/** Exactly one of the two: a canary by replicas or by requests (percent, 0-100). */
export interface CanarySplit {
  replicas?: number;
  requestShare?: number;
}

export interface Move {
  actor: string;
  reason?: string;
}

type ObservedAdapters = { adapters?: { name: string; version: string; state: string }[] } | null;
const immutableState = (observed: unknown, name: string) => (observed as ObservedAdapters)?.adapters?.find((x) => x.name === name)?.state ?? 'pending';

const DEFAULT_PROBE = 'Hello! In one sentence, what can you help me with?';

/** Versions with what the preflight and the planner need. */
const versionWithAdapter = { include: { adapter: { select: { name: true } } } } as const;

/**
 * Serving pools and their desired state: which versions are deployed and where each alias points. Every change is
 * one transaction that locks the pool row, bumps its revision (the agents' generation) and, for aliases, appends
 * a history row; the reconciler (worker) then makes every replica match. Nothing here talks to a replica.
 */
@Injectable()
export class ServingService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly catalog: ModelCatalog,
    private readonly secrets: SecretBox,
    private readonly gate: PromotionGate,
    private readonly queue: ServingQueue,
    private readonly outbox: WebhookOutbox,
    private readonly stats: AdapterStats,
    private readonly guard: TargetGuard,
    private readonly quotas: Quotas,
  ) {}

  async createPool(projectId: string, input: CreatePool): Promise<ServingPool> {
    const model = this.catalog.get(input.baseModel, 'base_model');
    if (await this.prisma.servingPool.findUnique({ where: { projectId_name: { projectId, name: input.name } } })) {
      throw new DomainError('invalid_request', `A serving pool named '${input.name}' already exists in this project`, 'name');
    }
    await this.quotas.assertPools(projectId);
    const maxCpuLoras = input.maxCpuLoras ?? input.maxLoras;
    if (maxCpuLoras < input.maxLoras) throw new DomainError('invalid_request', 'max_cpu_loras must be >= max_loras (as vLLM requires)', 'max_cpu_loras');
    return this.prisma.servingPool.create({
      data: {
        id: newId.pool(),
        projectId,
        name: input.name,
        baseModel: model.id,
        servedModelName: input.servedModelName ?? model.id,
        maxLoraRank: input.maxLoraRank,
        maxLoras: input.maxLoras,
        maxCpuLoras,
        supportedTargets: input.supportedTargets ?? model.lora.targetModules,
        probePrompt: input.probePrompt ?? DEFAULT_PROBE,
        usdPerGpuHour: input.usdPerGpuHour ?? null,
        gpusPerReplica: input.gpusPerReplica ?? null,
        autoDeploy: input.autoDeploy ?? false,
      },
    });
  }

  listPools(projectId: string) {
    return this.prisma.servingPool.findMany({ where: { projectId }, orderBy: { createdAt: 'asc' }, include: { _count: { select: { replicas: true } } } });
  }

  async getPool(projectId: string, name: string) {
    const pool = await this.prisma.servingPool.findUnique({
      where: { projectId_name: { projectId, name } },
      include: {
        replicas: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] },
        deployments: { orderBy: { createdAt: 'asc' }, include: { version: versionWithAdapter } },
        aliases: { orderBy: { createdAt: 'asc' }, include: { adapter: { select: { name: true } } } },
      },
    });
    if (!pool) throw notFound('serving pool', name, 'pool');
    return pool;
  }

  async addReplica(projectId: string, poolName: string, input: AddReplica) {
    const pool = await this.getPool(projectId, poolName);
    if (pool.replicas.some((r) => r.name === input.name)) {
      throw new DomainError('invalid_request', `Pool '${poolName}' already has a replica named '${input.name}'`, 'name');
    }
    await this.guard.assertAllowed(input.vllmUrl, 'vllm_url');
    await this.guard.assertAllowed(input.agentUrl, 'agent_url');
    await this.quotas.assertReplicas(projectId);
    const id = newId.replica();
    const replica = await this.prisma.replica.create({
      data: {
        id,
        poolId: pool.id,
        projectId,
        name: input.name,
        vllmUrl: input.vllmUrl,
        agentUrl: input.agentUrl,
        agentTokenSealed: this.secrets.seal(input.agentToken, { purpose: 'replica.agent_token', id }),
      },
    });
    await this.queue.reconcileSoon(pool.id);
    return replica;
  }

  async removeReplica(projectId: string, poolName: string, replicaName: string): Promise<void> {
    const pool = await this.getPool(projectId, poolName);
    const replica = pool.replicas.find((r) => r.name === replicaName);
    if (!replica) throw notFound('replica', replicaName, 'replica');
    await this.prisma.replica.delete({ where: { id: replica.id } });
    // Canary shares are counted over the remaining replicas: let them catch up.
    await this.changeDesired(pool.id, async () => undefined);
  }

  /** Load a version under its immutable name on every replica. */
  async deploy(projectId: string, poolName: string, adapter: string, version: number) {
    const pool = await this.getPool(projectId, poolName);
    const v = await this.compatibleVersion(projectId, pool, adapter, version);
    await this.changeDesired(pool.id, (tx) => this.ensureDeployed(tx, pool, v.id));
    return this.getPool(projectId, poolName);
  }

  async undeploy(projectId: string, poolName: string, adapter: string, version: number): Promise<void> {
    const pool = await this.getPool(projectId, poolName);
    const dep = pool.deployments.find((d) => d.version.adapter.name === adapter && d.version.version === version);
    if (!dep) throw notFound('deployment', `${servedName(adapter, version)} on ${poolName}`, 'version');
    await this.changeDesired(pool.id, async (tx) => {
      const users = await tx.alias.findMany({ where: { poolId: pool.id, OR: [{ versionId: dep.versionId }, { canaryVersionId: dep.versionId }] } });
      if (users.length > 0) {
        throw new DomainError('version_in_use', `${servedName(adapter, version)} is what alias '${adapter}' serves on pool '${poolName}'; move the alias first`, 'version');
      }
      await tx.deployment.delete({ where: { id: dep.id } });
    });
  }

  /** Point the alias at a version on every replica (the version is deployed too). Goes through the promotion gate. */
  async rollout(projectId: string, poolName: string, adapter: string, version: number, move: Move) {
    const pool = await this.getPool(projectId, poolName);
    const v = await this.compatibleVersion(projectId, pool, adapter, version);
    const existing = await this.prisma.alias.findUnique({ where: { poolId_adapterId: { poolId: pool.id, adapterId: v.adapterId } } });
    const current = existing ? await this.prisma.adapterVersion.findUnique({ where: { id: existing.versionId } }) : null;
    if (current?.id !== v.id) await this.requireGate(projectId, pool, adapter, v, current);
    await this.changeDesired(pool.id, async (tx) => {
      await this.ensureDeployed(tx, pool, v.id);
      const alias = await tx.alias.findUnique({ where: { poolId_adapterId: { poolId: pool.id, adapterId: v.adapterId } } });
      if (!alias) {
        const created = await tx.alias.create({ data: { id: newId.alias(), poolId: pool.id, projectId, adapterId: v.adapterId, versionId: v.id } });
        await this.record(tx, { id: created.id, projectId, pool: pool.name, adapter }, 'rollout', null, v.version, move);
        return;
      }
      const from = await tx.adapterVersion.findUniqueOrThrow({ where: { id: alias.versionId } });
      await tx.alias.update({
        where: { id: alias.id },
        data: { versionId: v.id, previousVersionId: alias.versionId === v.id ? alias.previousVersionId : alias.versionId, canaryVersionId: null, canaryReplicas: 0, canaryRequestShare: null },
      });
      await this.record(tx, { id: alias.id, projectId, pool: pool.name, adapter }, 'rollout', from.version, v.version, move);
    });
    return this.aliasView(projectId, poolName, adapter);
  }

  /**
   * A canary of a candidate version, by replicas (the alias serves it on the first `replicas` replicas of the pool,
   * the rest keep the alias's version) or by requests (every replica keeps the alias's version and loads the
   * candidate under its immutable name; the gateway sends `requestShare` % of the alias's requests there, sticky per
   * user or session).
   */
  async canary(projectId: string, poolName: string, adapter: string, version: number, split: CanarySplit, move: Move) {
    const pool = await this.getPool(projectId, poolName);
    const replicas = split.replicas ?? 0;
    const requestShare = split.requestShare ?? null;
    if ((split.replicas === undefined) === (requestShare === null)) {
      throw new DomainError('invalid_request', 'Give exactly one of replicas (a canary by replicas) and request_share (a canary by requests)', split.replicas === undefined ? 'replicas' : 'request_share');
    }
    if (split.replicas !== undefined && replicas >= pool.replicas.length) {
      throw new DomainError('invalid_request', `A canary takes fewer replicas than the pool has (${pool.replicas.length}); to serve it everywhere, roll it out`, 'replicas');
    }
    const v = await this.compatibleVersion(projectId, pool, adapter, version);
    await this.changeDesired(pool.id, async (tx) => {
      const alias = await this.lockAlias(tx, pool.id, v.adapterId, adapter);
      if (alias.versionId === v.id) throw new DomainError('invalid_request', `Alias '${adapter}' already serves v${version} everywhere`, 'version');
      await this.ensureDeployed(tx, pool, v.id);
      await tx.alias.update({ where: { id: alias.id }, data: { canaryVersionId: v.id, canaryReplicas: replicas, canaryRequestShare: requestShare } });
      const from = await tx.adapterVersion.findUniqueOrThrow({ where: { id: alias.versionId } });
      await this.record(tx, { id: alias.id, projectId, pool: pool.name, adapter }, 'canary', from.version, v.version, move, { replicas, requestShare });
    });
    return this.aliasView(projectId, poolName, adapter);
  }

  /** The canary version becomes the alias's version on every replica (through the promotion gate). */
  async promote(projectId: string, poolName: string, adapter: string, move: Move) {
    const pool = await this.getPool(projectId, poolName);
    const a = await this.findAlias(projectId, pool.id, adapter);
    if (!a.canaryVersionId) throw new DomainError('invalid_state', `Alias '${adapter}' has no canary to promote`, 'adapter_name');
    const [candidate, current] = await Promise.all([
      this.prisma.adapterVersion.findUniqueOrThrow({ where: { id: a.canaryVersionId } }),
      this.prisma.adapterVersion.findUniqueOrThrow({ where: { id: a.versionId } }),
    ]);
    await this.requireGate(projectId, pool, adapter, candidate, current);
    await this.changeDesired(pool.id, async (tx) => {
      const alias = await this.lockAlias(tx, pool.id, a.adapterId, adapter);
      if (alias.canaryVersionId !== candidate.id) throw new DomainError('invalid_state', `The canary of '${adapter}' changed meanwhile; look again`, 'adapter_name');
      await tx.alias.update({ where: { id: alias.id }, data: { versionId: candidate.id, previousVersionId: alias.versionId, canaryVersionId: null, canaryReplicas: 0, canaryRequestShare: null } });
      await this.record(tx, { id: alias.id, projectId, pool: pool.name, adapter }, 'promote', current.version, candidate.version, move);
    });
    return this.aliasView(projectId, poolName, adapter);
  }

  /**
   * One call back: a running canary is called off (every replica serves the alias's version again); otherwise the
   * alias returns to the version it served before its last move. The old version is still deployed (its files on
   * every replica), so each replica re-points the name in place at once.
   */
  async rollback(projectId: string, poolName: string, adapter: string, move: Move) {
    const pool = await this.getPool(projectId, poolName);
    const a = await this.findAlias(projectId, pool.id, adapter);
    await this.changeDesired(pool.id, async (tx) => {
      const alias = await this.lockAlias(tx, pool.id, a.adapterId, adapter);
      const current = await tx.adapterVersion.findUniqueOrThrow({ where: { id: alias.versionId } });
      if (alias.canaryVersionId) {
        const canary = await tx.adapterVersion.findUniqueOrThrow({ where: { id: alias.canaryVersionId } });
        await tx.alias.update({ where: { id: alias.id }, data: { canaryVersionId: null, canaryReplicas: 0, canaryRequestShare: null } });
        await this.record(tx, { id: alias.id, projectId, pool: pool.name, adapter }, 'rollback', canary.version, current.version, move);
        return;
      }
      if (!alias.previousVersionId) throw new DomainError('invalid_state', `Alias '${adapter}' has no earlier version to roll back to`, 'adapter_name');
      const previous = await tx.adapterVersion.findUniqueOrThrow({ where: { id: alias.previousVersionId } });
      if (previous.deletedAt) throw new DomainError('invalid_state', `${servedName(adapter, previous.version)} was deleted; roll out another version instead`, 'adapter_name');
      await this.ensureDeployed(tx, pool, previous.id);
      await tx.alias.update({ where: { id: alias.id }, data: { versionId: previous.id, previousVersionId: current.id } });
      await this.record(tx, { id: alias.id, projectId, pool: pool.name, adapter }, 'rollback', current.version, previous.version, move);
    });
    return this.aliasView(projectId, poolName, adapter);
  }

  async history(projectId: string, poolName: string, adapter: string) {
    const pool = await this.getPool(projectId, poolName);
    const alias = await this.findAlias(projectId, pool.id, adapter);
    return this.prisma.aliasEvent.findMany({ where: { aliasId: alias.id, projectId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  /** The alias's state and, per replica, which version it should serve there and what the agent last reported. */
  async aliasView(projectId: string, poolName: string, adapter: string) {
    const pool = await this.getPool(projectId, poolName);
    const alias = await this.findAlias(projectId, pool.id, adapter);
    const ids = [alias.versionId, alias.canaryVersionId, alias.previousVersionId].filter((x): x is string => Boolean(x));
    const versions = new Map((await this.prisma.adapterVersion.findMany({ where: { id: { in: ids } } })).map((v) => [v.id, v.version]));
    const replicas = pool.replicas.map((r, i) => {
      const serves = alias.canaryVersionId && i < alias.canaryReplicas ? alias.canaryVersionId : alias.versionId;
      const observed = (r.observed as { adapters?: { name: string; version: string; state: string; error?: string }[] } | null)?.adapters?.find((x) => x.name === adapter);
      const want = servedName(adapter, versions.get(serves)!);
      return {
        replica: r.name,
        status: r.status,
        version: versions.get(serves)!,
        canary: serves === alias.canaryVersionId,
        state: observed && observed.version === want ? observed.state : 'pending',
        error: observed && observed.version === want ? (observed.error ?? null) : null,
        // A canary by requests is called by its immutable name on every replica: whether it is loaded here.
        canary_state: alias.canaryRequestShare !== null && alias.canaryVersionId ? immutableState(r.observed, servedName(adapter, versions.get(alias.canaryVersionId)!)) : null,
      };
    });
    return { pool, alias, versions, replicas };
  }

  /** The alias view with what the gateways measured per version and replica over the last `minutes` minutes. */
  async aliasFigures(projectId: string, poolName: string, adapter: string, minutes: number) {
    const state = await this.aliasView(projectId, poolName, adapter);
    return { state, minutes, figures: await this.stats.window(state.pool.id, adapter, minutes) };
  }

  // --- helpers ---------------------------------------------------------------------------------------------------

  /**
   * Runs a change of the pool's desired state under its row lock, bumps the revision, then wakes the reconciler and
   * the delivery of the webhook events the change recorded.
   */
  private async changeDesired(poolId: string, change: (tx: Tx) => Promise<void>): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "ServingPool" WHERE id = ${poolId} FOR UPDATE`;
      await change(tx);
      await tx.servingPool.update({ where: { id: poolId }, data: { revision: { increment: 1 } } });
    });
    await this.queue.reconcileSoon(poolId);
    await this.outbox.dispatchSoon();
  }

  private async ensureDeployed(tx: Tx, pool: { id: string; projectId: string; name: string }, versionId: string): Promise<void> {
    // Share-lock the version: a delete running at the same time (which locks it for update) waits, then sees this.
    const live = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "AdapterVersion" WHERE id = ${versionId} AND "deletedAt" IS NULL FOR SHARE`;
    if (live.length === 0) throw new DomainError('invalid_state', 'That adapter version was deleted meanwhile', 'version');
    // Under the pool's row lock (changeDesired), so nobody else creates this deployment between the two statements.
    if (await tx.deployment.findUnique({ where: { poolId_versionId: { poolId: pool.id, versionId } } })) return;
    await tx.deployment.create({ data: { id: newId.deployment(), poolId: pool.id, projectId: pool.projectId, versionId } });
    const v = await tx.adapterVersion.findUniqueOrThrow({ where: { id: versionId }, include: { adapter: { select: { name: true } } } });
    await this.outbox.record(tx, pool.projectId, 'adapter.deployed', { pool: pool.name, adapter: v.adapter.name, version: v.version });
  }

  private async compatibleVersion(projectId: string, pool: ServingPool, adapter: string, version: number) {
    const v = await this.prisma.adapterVersion.findFirst({ where: { projectId, version, deletedAt: null, adapter: { name: adapter, projectId } } });
    if (!v) throw notFound('adapter version', servedName(adapter, version), 'version');
    const weights = this.catalog.find(pool.baseModel)?.weights;
    const limits = { ...pool, baseRevision: weights?.source === 'builtin' ? weights.ref : undefined };
    assertCompatible(limits, { label: servedName(adapter, version), baseModel: v.baseModel, rank: v.rank, targetModules: v.targetModules, peftConfig: v.peftConfig });
    return v;
  }

  private async findAlias(projectId: string, poolId: string, adapter: string) {
    const alias = await this.prisma.alias.findFirst({ where: { poolId, projectId, adapter: { name: adapter } } });
    if (!alias) throw notFound('alias', adapter, 'adapter_name');
    return alias;
  }

  private async lockAlias(tx: Tx, poolId: string, adapterId: string, adapter: string) {
    const alias = await tx.alias.findUnique({ where: { poolId_adapterId: { poolId, adapterId } } });
    if (!alias) throw new DomainError('invalid_state', `Alias '${adapter}' does not exist on this pool yet: roll out a first version`, 'adapter_name');
    return alias;
  }

  private async requireGate(projectId: string, pool: ServingPool, adapter: string, candidate: { id: string; version: number }, current: { id: string; version: number } | null) {
    const verdict = await this.gate.check({ projectId, pool: { id: pool.id, name: pool.name }, adapter, candidate, current });
    if (!verdict.allowed) throw new DomainError('gate_not_met', `Promotion of ${servedName(adapter, candidate.version)} refused: ${verdict.reason}`, 'version');
  }

  /** The alias's history row and its `adapter.alias.moved` webhook event, in the move's transaction. */
  private async record(
    tx: Tx,
    alias: { id: string; projectId: string; pool: string; adapter: string },
    action: AliasAction,
    fromVersion: number | null,
    toVersion: number,
    move: Move,
    canary?: { replicas: number; requestShare: number | null },
  ) {
    const { projectId } = alias;
    const canaryReplicas = canary?.requestShare === null ? canary.replicas : null;
    const canaryRequestShare = canary?.requestShare ?? null;
    await tx.aliasEvent.create({
      data: { id: newId.aliasEvent(), aliasId: alias.id, projectId, action, fromVersion, toVersion, canaryReplicas, canaryRequestShare, actor: move.actor, reason: move.reason ?? null },
    });
    await this.outbox.record(tx, projectId, 'adapter.alias.moved', {
      pool: alias.pool,
      adapter: alias.adapter,
      action,
      from_version: fromVersion,
      to_version: toVersion,
      canary_replicas: canaryReplicas,
      canary_request_share: canaryRequestShare,
      actor: move.actor,
      reason: move.reason ?? null,
    });
  }
}
