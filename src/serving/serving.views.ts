import type { AliasEvent } from '../generated/prisma/client';
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
      canary: a.canaryVersionId ? { version: numbers.get(a.canaryVersionId) ?? null, replicas: a.canaryReplicas } : null,
    })),
  };
}

export function aliasStateView(s: AliasState) {
  return {
    object: 'serving.alias' as const,
    pool: s.pool.name,
    adapter: s.pool.aliases.find((a) => a.id === s.alias.id)!.adapter.name,
    version: s.versions.get(s.alias.versionId),
    canary: s.alias.canaryVersionId ? { version: s.versions.get(s.alias.canaryVersionId), replicas: s.alias.canaryReplicas } : null,
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
    actor: e.actor,
    reason: e.reason,
    created_at: unix(e.createdAt),
  };
}
