import type { Route } from './routing-snapshot';

/** OpenAI's model object, with where loraplane routes the name (`routing`) for callable names. */
export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  [extra: string]: unknown;
}

/** A pool name is callable once a replica reported it loaded; a provider model always is. */
export const isCallable = (r: Route) => r.kind === 'provider' || r.candidates.length > 0;

export function routeCard(r: Route, projectId: string): ModelCard {
  const routing = r.kind === 'provider' ? { kind: r.kind } : { kind: r.kind, pools: r.pools, ready_replicas: new Set(r.candidates.map((c) => c.replicaId)).size };
  return { id: r.name, object: 'model', created: r.created, owned_by: r.kind === 'base' ? 'loraplane' : projectId, routing };
}

/** What can be called now, in resolution order. */
export function callableCards(routes: Route[], projectId: string): ModelCard[] {
  return routes.filter(isCallable).map((r) => routeCard(r, projectId));
}
