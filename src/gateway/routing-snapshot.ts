import { ObservedReplica, ReplicaChoice, replicasServing } from '../serving/replica-router';
import { servedName } from '../serving/served-name';

/**
 * The name-resolution table, one per project, built from Postgres rows by a pure function (unit-tested without a
 * database). A model name a client sends resolves, first match wins, as:
 *
 * | name                               | resolves to                                                         |
 * |------------------------------------|---------------------------------------------------------------------|
 * | `ft:{base}:{project}:{suffix}:{id}`| that job's adapter version (`adapter@vN`) on every pool it is deployed to |
 * | `adapter@vN`                       | that version, on every pool it is deployed to                       |
 * | `adapter` (an alias)               | the alias on each pool that has it (a canary's replica share applies)|
 * | a base model id or served name     | the base model on each of the project's pools for it                |
 * | a provider model name              | that external OpenAI-compatible API, with the project's sealed key  |
 *
 * Anything else, including another project's names, is unknown: the table holds only the caller's project.
 */
export type RouteKind = 'fine_tuned' | 'version' | 'alias' | 'base' | 'provider';

export interface PoolRoute {
  kind: Exclude<RouteKind, 'provider'>;
  name: string;
  /** The version behind the name (fine-tuned models and versions); null for aliases and base models. */
  versionId: string | null;
  pools: string[];
  /** Ready replicas that reported the name loaded, with the name to send each. */
  candidates: ReplicaChoice[];
  created: number;
}

export interface ProviderRoute {
  kind: 'provider';
  name: string;
  id: string;
  baseUrl: string;
  upstreamModel: string;
  apiKey: string | null;
  created: number;
}

export type Route = PoolRoute | ProviderRoute;

export interface ProjectRoutes {
  byName: Map<string, Route>;
}

export interface RoutingSnapshot {
  projects: Map<string, ProjectRoutes>;
}

export const emptySnapshot = (): RoutingSnapshot => ({ projects: new Map() });

export interface PoolRow {
  id: string;
  projectId: string;
  name: string;
  baseModel: string;
  servedModelName: string;
  createdAt: Date;
  replicas: ObservedReplica[];
  deployments: { createdAt: Date; version: { id: string; version: number; jobId: string | null; checkpointId: string | null; adapter: { name: string } } }[];
  aliases: { updatedAt: Date; adapter: { name: string } }[];
}

export interface JobRow {
  id: string;
  fineTunedModel: string;
}

export interface ProviderRow {
  id: string;
  projectId: string;
  name: string;
  baseUrl: string;
  upstreamModel: string;
  apiKey: string | null;
  createdAt: Date;
}

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

export function buildSnapshot(pools: PoolRow[], jobs: JobRow[], providers: ProviderRow[]): RoutingSnapshot {
  const projects = new Map<string, ProjectRoutes>();
  const of = (projectId: string) => {
    let p = projects.get(projectId);
    if (!p) projects.set(projectId, (p = { byName: new Map() }));
    return p;
  };
  const ftByJob = new Map(jobs.map((j) => [j.id, j.fineTunedModel]));
  // Collected per kind, then merged in the table's order of precedence.
  const layers: Record<Exclude<RouteKind, 'provider'>, Map<string, Map<string, PoolRoute>>> = { fine_tuned: new Map(), version: new Map(), alias: new Map(), base: new Map() };
  const add = (kind: PoolRoute['kind'], projectId: string, name: string, pool: PoolRow, upstream: string, versionId: string | null, created: Date) => {
    const byName = layers[kind].get(projectId) ?? new Map<string, PoolRoute>();
    layers[kind].set(projectId, byName);
    const route = byName.get(name) ?? { kind, name, versionId, pools: [], candidates: [], created: unix(created) };
    byName.set(name, route);
    route.pools.push(pool.name);
    route.candidates.push(...replicasServing(pool.id, pool.replicas, upstream, pool.servedModelName));
  };
  for (const pool of pools) {
    for (const name of new Set([pool.baseModel, pool.servedModelName])) add('base', pool.projectId, name, pool, pool.servedModelName, null, pool.createdAt);
    for (const a of pool.aliases) add('alias', pool.projectId, a.adapter.name, pool, a.adapter.name, null, a.updatedAt);
    // A job's own output (not a checkpoint of it), newest version first, so a re-registration wins.
    const fromJobs = new Map<string, (typeof pool.deployments)[number]>();
    for (const d of pool.deployments) {
      const v = d.version;
      const name = servedName(v.adapter.name, v.version);
      add('version', pool.projectId, name, pool, name, v.id, d.createdAt);
      if (v.jobId && !v.checkpointId && ftByJob.has(v.jobId)) {
        const seen = fromJobs.get(v.jobId);
        if (!seen || seen.version.version < v.version) fromJobs.set(v.jobId, d);
      }
    }
    for (const [jobId, d] of fromJobs) add('fine_tuned', pool.projectId, ftByJob.get(jobId)!, pool, servedName(d.version.adapter.name, d.version.version), d.version.id, d.createdAt);
  }
  for (const kind of ['fine_tuned', 'version', 'alias', 'base'] as const) {
    for (const [projectId, byName] of layers[kind]) {
      const table = of(projectId).byName;
      for (const [name, route] of byName) if (!table.has(name)) table.set(name, route);
    }
  }
  for (const p of providers) {
    const table = of(p.projectId).byName;
    if (!table.has(p.name)) {
      table.set(p.name, { kind: 'provider', name: p.name, id: p.id, baseUrl: p.baseUrl.replace(/\/+$/, ''), upstreamModel: p.upstreamModel, apiKey: p.apiKey, created: unix(p.createdAt) });
    }
  }
  return { projects };
}

/** The route of `name` in the caller's project, or null (unknown here; other projects are never consulted). */
export function resolve(snapshot: RoutingSnapshot, projectId: string, name: string): Route | null {
  return snapshot.projects.get(projectId)?.byName.get(name) ?? null;
}
