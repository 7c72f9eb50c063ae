import { Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { z } from 'zod';
import { CurrentPrincipal, Principal, ProjectId } from '../common/auth/auth.decorators';
import { listOf, toList } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { MAX_WINDOW_MINUTES } from './adapter-stats';
import { ServingService } from './serving.service';
import { aliasEventObject, aliasEventView, aliasFiguresObject, aliasFiguresView, aliasStateObject, aliasStateView, poolObject, poolView } from './serving.views';

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)');
const versionNumber = z.coerce.number().int().min(1);
const versionParam = z
  .string()
  .regex(/^v?[1-9][0-9]*$/, 'a version number such as 3 or v3')
  .transform((v) => Number(v.replace(/^v/, '')));
const httpUrl = z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL');
const VLLM_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512];

const createPool = z.object({
  name,
  base_model: z.string().min(1),
  served_model_name: z.string().min(1).max(200).optional(),
  max_lora_rank: z.number().int().refine((r) => VLLM_RANKS.includes(r), `must be one of vLLM's ranks: ${VLLM_RANKS.join(', ')}`),
  max_loras: z.number().int().min(1).max(256).default(1),
  max_cpu_loras: z.number().int().min(1).max(4096).optional(),
  supported_targets: z.array(z.string().min(1)).min(1).optional(),
  probe_prompt: z.string().min(1).max(2000).optional(),
  usd_per_gpu_hour: z.number().min(0).max(10_000).optional().describe("price of one GPU: the cost basis of every eval target on the pool (a target's own wins)"),
  gpus_per_replica: z.number().int().min(1).max(64).optional().describe('GPUs of one replica, for that cost'),
  /** Every succeeded job of the project for this base model is registered and deployed here by itself. */
  auto_deploy: z.boolean().default(false),
});
const addReplica = z.object({
  name,
  vllm_url: httpUrl,
  agent_url: httpUrl,
  agent_token: z.string().min(16, 'at least 16 characters (the agent refuses shorter tokens)').max(512),
});
const deploy = z.object({ adapter: name, version: versionNumber });
const reason = z.string().max(1000).optional();
const rollout = z.object({ version: versionNumber, reason });
// Exactly one of replicas and request_share (the service says which is missing or doubled).
const canary = z.object({
  version: versionNumber,
  replicas: z.number().int().min(1).optional(),
  request_share: z.number().min(0).max(100).optional(),
  reason,
});
const plain = z.object({ reason }).default({});
const figuresQuery = z.object({ window_minutes: z.coerce.number().int().min(1).max(MAX_WINDOW_MINUTES).default(5) }).strict();
const poolSummary = z.object({ object: z.literal('serving.pool'), id: z.string(), name: z.string(), base_model: z.string(), replicas: z.number().describe('the number of replicas') });
const deletedReplica = z.object({ object: z.literal('serving.replica.deleted'), pool: z.string(), replica: z.string(), deleted: z.literal(true) });
const deletedDeployment = z.object({ object: z.literal('serving.deployment.deleted'), pool: z.string(), adapter: z.string(), version: z.number(), deleted: z.literal(true) });

/**
 * Serving pools (vLLM replicas with an agent each) and the release moves on them: deploy a version, roll an alias
 * out, canary, promote, roll back, and the alias history. A loraplane extension; OpenAI has no such API.
 */
@Controller('v1/serving/pools')
export class ServingController {
  constructor(private readonly serving: ServingService) {}

  @Post()
  @ApiDoc({ summary: 'Create a serving pool: a base model, its vLLM LoRA limits and (later) its replicas', tags: ['serving'], response: poolObject })
  async create(@ProjectId() projectId: string, @ZBody(createPool) b: z.infer<typeof createPool>) {
    await this.serving.createPool(projectId, {
      name: b.name, baseModel: b.base_model, servedModelName: b.served_model_name, maxLoraRank: b.max_lora_rank,
      maxLoras: b.max_loras, maxCpuLoras: b.max_cpu_loras, supportedTargets: b.supported_targets, probePrompt: b.probe_prompt,
      usdPerGpuHour: b.usd_per_gpu_hour, gpusPerReplica: b.gpus_per_replica, autoDeploy: b.auto_deploy,
    });
    return poolView(await this.serving.getPool(projectId, b.name));
  }

  @Get()
  @ApiDoc({ summary: "List the project's serving pools (a summary each; GET a pool for its replicas, deployments and aliases)", tags: ['serving'], response: listOf(poolSummary) })
  async list(@ProjectId() projectId: string) {
    const pools = await this.serving.listPools(projectId);
    return toList(pools.map((p) => ({ object: 'serving.pool' as const, id: p.id, name: p.name, base_model: p.baseModel, replicas: p._count.replicas })));
  }

  @Get(':pool')
  @ApiDoc({ summary: 'A pool with its replicas (status, what each serves), deployments (no-effect check) and aliases', tags: ['serving'], response: poolObject })
  async get(@ProjectId() projectId: string, @ZParam('pool', name) pool: string) {
    return poolView(await this.serving.getPool(projectId, pool));
  }

  @Post(':pool/replicas')
  @ApiDoc({ summary: 'Register a vLLM replica and the agent beside it (the token is stored sealed and never shown again)', tags: ['serving'], response: poolObject })
  async addReplica(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZBody(addReplica) b: z.infer<typeof addReplica>) {
    await this.serving.addReplica(projectId, pool, { name: b.name, vllmUrl: b.vllm_url, agentUrl: b.agent_url, agentToken: b.agent_token });
    return poolView(await this.serving.getPool(projectId, pool));
  }

  @Delete(':pool/replicas/:replica')
  @ApiDoc({ summary: 'Remove a replica from the pool', tags: ['serving'], response: deletedReplica })
  async removeReplica(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('replica', name) replica: string): Promise<z.infer<typeof deletedReplica>> {
    await this.serving.removeReplica(projectId, pool, replica);
    return { object: 'serving.replica.deleted', pool, replica, deleted: true };
  }

  @Post(':pool/deployments')
  @ApiDoc({ summary: 'Deploy a version under its immutable name (adapter@vN) on every replica, after the compatibility preflight', tags: ['serving'], response: poolObject })
  async deploy(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZBody(deploy) b: z.infer<typeof deploy>) {
    return poolView(await this.serving.deploy(projectId, pool, b.adapter, b.version));
  }

  @Delete(':pool/deployments/:adapter_name/:version')
  @ApiDoc({ summary: 'Undeploy a version (refused while its alias serves it)', tags: ['serving'], response: deletedDeployment })
  async undeploy(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZParam('version', versionParam) version: number): Promise<z.infer<typeof deletedDeployment>> {
    await this.serving.undeploy(projectId, pool, adapter, version);
    return { object: 'serving.deployment.deleted', pool, adapter, version, deleted: true };
  }

  @Get(':pool/aliases/:adapter_name')
  @ApiDoc({ summary: 'Where an alias points, its canary, per replica its load state, and per version and replica what the gateways measured over the last minutes (the canary arms side by side)', tags: ['serving'], response: aliasFiguresObject })
  async alias(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZQuery(figuresQuery) q: z.infer<typeof figuresQuery>) {
    return aliasFiguresView(await this.serving.aliasFigures(projectId, pool, adapter, q.window_minutes));
  }

  @Post(':pool/aliases/:adapter_name/rollout')
  @HttpCode(200)
  @ApiDoc({ summary: 'Point the alias at a version on every replica (through the promotion gate)', tags: ['serving'], response: aliasStateObject })
  async rollout(@ProjectId() projectId: string, @CurrentPrincipal() who: Principal, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZBody(rollout) b: z.infer<typeof rollout>) {
    return aliasStateView(await this.serving.rollout(projectId, pool, adapter, b.version, { actor: who.keyId, reason: b.reason }));
  }

  @Post(':pool/aliases/:adapter_name/canary')
  @HttpCode(200)
  @ApiDoc({ summary: 'A canary: the candidate serves the alias on the first k replicas, or a share (percent) of its requests, sticky per user or session', tags: ['serving'], response: aliasStateObject })
  async canary(@ProjectId() projectId: string, @CurrentPrincipal() who: Principal, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZBody(canary) b: z.infer<typeof canary>) {
    return aliasStateView(await this.serving.canary(projectId, pool, adapter, b.version, { replicas: b.replicas, requestShare: b.request_share }, { actor: who.keyId, reason: b.reason }));
  }

  @Post(':pool/aliases/:adapter_name/promote')
  @HttpCode(200)
  @ApiDoc({ summary: 'Make the canary version the alias everywhere (through the promotion gate)', tags: ['serving'], response: aliasStateObject })
  async promote(@ProjectId() projectId: string, @CurrentPrincipal() who: Principal, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZBody(plain) b: z.infer<typeof plain>) {
    return aliasStateView(await this.serving.promote(projectId, pool, adapter, { actor: who.keyId, reason: b.reason }));
  }

  @Post(':pool/aliases/:adapter_name/rollback')
  @HttpCode(200)
  @ApiDoc({ summary: 'Call off a canary, or return the alias to its previous version, in one call', tags: ['serving'], response: aliasStateObject })
  async rollback(@ProjectId() projectId: string, @CurrentPrincipal() who: Principal, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string, @ZBody(plain) b: z.infer<typeof plain>) {
    return aliasStateView(await this.serving.rollback(projectId, pool, adapter, { actor: who.keyId, reason: b.reason }));
  }

  @Get(':pool/aliases/:adapter_name/history')
  @ApiDoc({ summary: "The alias's moves, newest first: who, when, from, to, why", tags: ['serving'], response: listOf(aliasEventObject) })
  async history(@ProjectId() projectId: string, @ZParam('pool', name) pool: string, @ZParam('adapter_name', name) adapter: string) {
    return toList((await this.serving.history(projectId, pool, adapter)).map(aliasEventView));
  }
}
