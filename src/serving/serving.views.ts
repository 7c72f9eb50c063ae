import { z } from 'zod';
import type { AliasEvent } from '../generated/prisma/client';
import type { VersionFigures } from './adapter-stats';
import type { AgentReport } from './agent-client';
import type { ServingService } from './serving.service';
import { servedName } from './served-name';

/**
 * API shapes of serving objects (snake_case, unix seconds, never a token), each with its schema: the routes document
 * them, so the CLI and the dashboard read them through the generated types.
 */
const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

type Pool = Awaited<ReturnType<ServingService['getPool']>>;
type AliasState = Awaited<ReturnType<ServingService['aliasView']>>;
/** The agent's last report as stored; a replica never reached has none. */
type Observed = Partial<AgentReport>;
const canaryObject = z.object({ by: z.enum(['replicas', 'requests']), replicas: z.number(), request_share: z.number().nullable().describe('percent') });

/** A canary is by replicas (`replicas` > 0, no share) or by requests (`request_share`, no replicas). */
function canaryShape(a: { canaryReplicas: number; canaryRequestShare: number | null }) {
  return a.canaryRequestShare === null ? { by: 'replicas' as const, replicas: a.canaryReplicas, request_share: null } : { by: 'requests' as const, replicas: 0, request_share: a.canaryRequestShare };
}

export const poolObject = z.object({
  object: z.literal('serving.pool'),
  id: z.string(),
  name: z.string(),
  base_model: z.string(),
  served_model_name: z.string(),
  max_lora_rank: z.number(),
  max_loras: z.number(),
  max_cpu_loras: z.number(),
  supported_targets: z.array(z.string()),
  probe_prompt: z.string(),
  usd_per_gpu_hour: z.number().nullable(),
  gpus_per_replica: z.number().nullable(),
  auto_deploy: z.boolean(),
  revision: z.number(),
  created_at: z.number(),
  replicas: z.array(
    z.object({
      name: z.string(),
      vllm_url: z.string(),
      agent_url: z.string(),
      status: z.enum(['pending', 'ready', 'not_ready', 'unreachable']),
      in_sync: z.boolean().describe('ready and on the pool\'s current revision'),
      last_seen_at: z.number().nullable(),
      last_error: z.string().nullable(),
      failures: z.number(),
      next_attempt_at: z.number().nullable(),
      adapters: z
        .array(z.object({ name: z.string(), version: z.string().describe('the immutable version it serves, adapter@vN'), state: z.enum(['pending', 'downloading', 'ready', 'loaded', 'error']), error: z.string().nullable() }))
        .describe("what the agent last reported, per served name (an alias's name or adapter@vN)"),
      vllm_loaded: z.array(z.string()),
    }),
  ),
  deployments: z.array(
    z.object({
      adapter: z.string(),
      version: z.number(),
      served_name: z.string(),
      warning: z.string().nullable().describe('set when the no-effect check found the answer identical to the base model\'s'),
      probe: z.object({ replica: z.string(), prompt: z.string(), base: z.string(), adapter: z.string(), identical: z.boolean(), at: z.string() }).nullable().describe('the no-effect check, once run'),
      created_at: z.number(),
    }),
  ),
  aliases: z.array(z.object({ adapter: z.string(), version: z.number().nullable(), canary: canaryObject.extend({ version: z.number().nullable() }).nullable() })),
});
type Probe = z.infer<typeof poolObject>['deployments'][number]['probe'];

export function poolView(pool: Pool): z.infer<typeof poolObject> {
  // An alias only ever names deployed versions, so the deployments hold every number an alias needs.
  const numbers = new Map(pool.deployments.map((d) => [d.versionId, d.version.version]));
  return {
    object: 'serving.pool' as const,
    id: pool.id,
    name: pool.name,
    base_model: pool.baseModel,
    served_model_name: pool.servedModelName,
    max_lora_rank: pool.maxLoraRank,
    max_loras: pool.maxLoras,
    max_cpu_loras: pool.maxCpuLoras,
    supported_targets: pool.supportedTargets,
    probe_prompt: pool.probePrompt,
    usd_per_gpu_hour: pool.usdPerGpuHour,
    gpus_per_replica: pool.gpusPerReplica,
    auto_deploy: pool.autoDeploy,
    revision: pool.revision,
    created_at: seconds(pool.createdAt),
    replicas: pool.replicas.map((r) => {
      const observed = (r.observed ?? {}) as Observed;
      return {
        name: r.name,
        vllm_url: r.vllmUrl,
        agent_url: r.agentUrl,
        status: r.status,
        in_sync: r.status === 'ready' && observed.generation === pool.revision,
        last_seen_at: unix(r.lastSeenAt),
        last_error: r.lastError,
        failures: r.failures,
        next_attempt_at: unix(r.nextAttemptAt),
        adapters: (observed.adapters ?? []).map((a) => ({ name: a.name, version: a.version, state: a.state, error: a.error ?? null })),
        vllm_loaded: (observed.vllm?.loaded ?? []).map((m) => m.name),
      };
    }),
    deployments: pool.deployments.map((d) => ({
      adapter: d.version.adapter.name,
      version: d.version.version,
      served_name: servedName(d.version.adapter.name, d.version.version),
      warning: d.warning,
      probe: d.probe as Probe, // written whole by the reconciler's no-effect check
      created_at: seconds(d.createdAt),
    })),
    aliases: pool.aliases.map((a) => ({
      adapter: a.adapter.name,
      version: numbers.get(a.versionId) ?? null,
      canary: a.canaryVersionId ? { version: numbers.get(a.canaryVersionId) ?? null, ...canaryShape(a) } : null,
    })),
  };
}

/** An alias as its moves answer it: documented, so the CLI and the dashboard read it through the generated types. */
export const aliasStateObject = z.object({
  object: z.literal('serving.alias'),
  pool: z.string(),
  adapter: z.string(),
  version: z.number().optional(),
  canary: canaryObject.extend({ version: z.number().optional() }).nullable(),
  previous_version: z.number().nullable(),
  updated_at: z.number().nullable(),
  replicas: z.array(
    z.object({ replica: z.string(), status: z.string(), version: z.number(), canary: z.boolean(), state: z.string(), error: z.string().nullable(), canary_state: z.string().nullable() }),
  ),
});
/** GET of an alias: its state and what the gateways measured per version (VersionFigures, adapter-stats.ts). */
export const aliasFiguresObject = aliasStateObject.extend({
  traffic: z.object({ window_minutes: z.number(), versions: z.array(z.object({ arm: z.enum(['stable', 'canary']).nullable(), version: z.number() }).catchall(z.unknown())) }),
});

export function aliasStateView(s: AliasState): z.infer<typeof aliasStateObject> {
  return {
    object: 'serving.alias' as const,
    pool: s.pool.name,
    adapter: s.pool.aliases.find((a) => a.id === s.alias.id)!.adapter.name,
    version: s.versions.get(s.alias.versionId),
    canary: s.alias.canaryVersionId ? { version: s.versions.get(s.alias.canaryVersionId), ...canaryShape(s.alias) } : null,
    previous_version: s.alias.previousVersionId ? (s.versions.get(s.alias.previousVersionId) ?? null) : null,
    updated_at: unix(s.alias.updatedAt),
    replicas: s.replicas,
  };
}

export const aliasEventObject = z.object({
  object: z.literal('serving.alias.event'),
  id: z.string(),
  action: z.enum(['rollout', 'canary', 'promote', 'rollback']),
  from_version: z.number().nullable(),
  to_version: z.number(),
  canary_replicas: z.number().nullable(),
  canary_request_share: z.number().nullable(),
  actor: z.string().describe('the id of the API key that made the move'),
  reason: z.string().nullable(),
  created_at: z.number(),
});

export function aliasEventView(e: AliasEvent): z.infer<typeof aliasEventObject> {
  return {
    object: 'serving.alias.event' as const,
    id: e.id,
    action: e.action,
    from_version: e.fromVersion,
    to_version: e.toVersion,
    canary_replicas: e.canaryReplicas,
    canary_request_share: e.canaryRequestShare,
    actor: e.actor,
    reason: e.reason,
    created_at: seconds(e.createdAt),
  };
}

/**
 * The alias with its traffic: one entry per version seen in the window or served now, tagged with its arm
 * (stable: the alias's version, canary: the candidate, null: neither any more), so a canary's two arms read side by
 * side.
 */
export function aliasFiguresView(s: { state: AliasState; minutes: number; figures: VersionFigures[] }) {
  const view = aliasStateView(s.state);
  const empty = (version: number): VersionFigures => ({ version, requests: 0, errors: 0, latency_p50_ms: null, latency_p95_ms: null, ttft_p50_ms: null, ttft_p95_ms: null, replicas: [] });
  const byVersion = new Map(s.figures.map((f) => [f.version, f]));
  const arms: [number | undefined, 'stable' | 'canary'][] = [[view.version, 'stable'], [view.canary?.version, 'canary']];
  for (const [v] of arms) if (v !== undefined && !byVersion.has(v)) byVersion.set(v, empty(v));
  const armOf = (v: number) => arms.find(([x]) => x === v)?.[1] ?? null;
  const order = (f: VersionFigures) => ({ stable: 0, canary: 1 })[armOf(f.version) ?? 'stable'] + (armOf(f.version) ? 0 : 2);
  return {
    ...view,
    traffic: {
      window_minutes: s.minutes,
      versions: [...byVersion.values()].sort((a, b) => order(a) - order(b) || a.version - b.version).map((f) => ({ arm: armOf(f.version), ...f })),
    },
  };
}
