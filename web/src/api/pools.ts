import { api, call } from './client';
import type { Pool } from './views';

/** Every pool in full: the list route gives a summary, each pool's own route its replicas, deployments and aliases. */
export async function loadPools(): Promise<Pool[]> {
  const list = await call(api.GET('/v1/serving/pools'));
  return Promise.all(list.data.map((p) => call(api.GET('/v1/serving/pools/{pool}', { params: { path: { pool: p.name } } }))));
}
