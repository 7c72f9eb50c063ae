import { z } from 'zod';
import type { Route } from './routing-snapshot';

/** OpenAI's model object, with where loraplane routes the name (`routing`) for callable names. */
export const modelCard = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number(),
  owned_by: z.string(),
  // loraplane's extensions, each on the kind of name it describes.
  development: z.boolean().optional().describe('base models: the development model (runs on CPU)'),
  parent: z.string().optional().describe('fine-tuned models: the base model'),
  job_id: z.string().optional().describe('fine-tuned models: the job that made it'),
  routing: z
    .object({ kind: z.enum(['fine_tuned', 'version', 'alias', 'base', 'provider']), pools: z.array(z.string()).optional(), ready_replicas: z.number().optional() })
    .optional()
    .describe('callable names: where the gateway sends them'),
});
export type ModelCard = z.infer<typeof modelCard>;

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
