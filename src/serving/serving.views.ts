import { z } from 'zod';
import type { AliasEvent } from '../generated/prisma/client';
import type { VersionFigures } from './adapter-stats';
import type { ServingService } from './serving.service';
import { servedName } from './served-name';

/** API shapes of serving objects (snake_case, unix seconds, never a token). */
const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

type Pool = Awaited<ReturnType<ServingService['getPool']>>;
type AliasState = Awaited<ReturnType<ServingService['aliasView']>>;
interface Observed {
  generation?: number;
  vllm?: { reachable: boolean | null; loaded?: { name: string }[] };
  adapters?: { name: string; version: string; state: string; error?: string }[];
}

/** A canary is by replicas (`replicas` > 0, no share) or by requests (`request_share`, no replicas). */
function canaryShape(a: { canaryReplicas: number; canaryRequestShare: number | null }) {
  return a.canaryRequestShare === null ? { by: 'replicas' as const, replicas: a.canaryReplicas, request_share: null } : { by: 'requests' as const, replicas: 0, request_share: a.canaryRequestShare };
}

export function poolView(pool: Pool) {
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
    created_at: unix(pool.createdAt),
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
      probe: d.probe,
      created_at: unix(d.createdAt),
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
  canary: z.object({ version: z.number().optional(), by: z.enum(['replicas', 'requests']), replicas: z.number(), request_share: z.number().nullable() }).nullable(),
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

export function aliasEventView(e: AliasEvent) {
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
    created_at: unix(e.createdAt),
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
