import { Injectable } from '@nestjs/common';
import { Config } from '../config/config';

/** A replica a request can go to, with the name the model is loaded under there. */
export interface ReplicaChoice {
  replicaId: string;
  replicaName: string;
  poolId: string;
  /** vLLM's base URL (no /v1). */
  url: string;
  /** The `model` to send to that replica (`adapter@vN`, the alias, or the pool's served model name). */
  upstreamModel: string;
}

/** Which replicas serve a name, from what each agent reported loaded (the reconciler's observed state). */
export interface ObservedReplica {
  id: string;
  name: string;
  vllmUrl: string;
  status: string;
  observed: unknown;
}

interface Observed {
  vllm?: { reachable?: boolean | null };
  adapters?: { name: string; state: string }[];
}

/** Ready replicas of a pool that have `name` loaded; the base model (`baseName`) is on every ready replica. */
export function replicasServing(poolId: string, replicas: readonly ObservedReplica[], name: string, baseName: string): ReplicaChoice[] {
  return replicas
    .filter((r) => {
      if (r.status !== 'ready') return false;
      if (name === baseName) return true;
      return ((r.observed ?? {}) as Observed).adapters?.some((a) => a.name === name && a.state === 'loaded') ?? false;
    })
    .map((r) => ({ replicaId: r.id, replicaName: r.name, poolId, url: r.vllmUrl.replace(/\/+$/, ''), upstreamModel: name }));
}

/**
 * The one replica router (gateway and eval targets): among the replicas that have the model loaded, the one with
 * the fewest requests in flight from this process; ties go round-robin. A replica whose connection was refused
 * is skipped for GATEWAY_REPLICA_BACKOFF_MS (the reconciler marks it down for good a few seconds later).
 */
@Injectable()
export class ReplicaRouter {
  private readonly inFlight = new Map<string, number>();
  private readonly downUntil = new Map<string, number>();
  private turn = 0;
  private readonly backoffMs: number;

  constructor(config: Config) {
    this.backoffMs = config.env.GATEWAY_REPLICA_BACKOFF_MS;
  }

  choose<T extends ReplicaChoice>(candidates: readonly T[], exclude?: string): T | null {
    const n = candidates.length;
    if (n === 0) return null;
    const now = this.downUntil.size > 0 ? Date.now() : 0;
    const start = this.turn++ % n;
    let best: T | null = null;
    let bestLoad = Infinity;
    let fallback: T | null = null;
    for (let k = 0; k < n; k++) {
      const c = candidates[(start + k) % n];
      if (c.replicaId === exclude) continue;
      const until = now ? this.downUntil.get(c.replicaId) : undefined;
      if (until !== undefined && until > now) {
        fallback ??= c;
        continue;
      }
      const load = this.inFlight.get(c.replicaId) ?? 0;
      if (load < bestLoad) {
        best = c;
        bestLoad = load;
      }
    }
    // Every candidate backing off: try one anyway rather than refuse (it may be back).
    return best ?? fallback;
  }

  /** Counts a request in flight on the replica until the returned function is called (idempotent). */
  acquire(replicaId: string): () => void {
    this.inFlight.set(replicaId, (this.inFlight.get(replicaId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(replicaId) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(replicaId);
      else this.inFlight.set(replicaId, left);
    };
  }

  markDown(replicaId: string): void {
    if (this.backoffMs > 0) this.downUntil.set(replicaId, Date.now() + this.backoffMs);
  }

  markUp(replicaId: string): void {
    this.downUntil.delete(replicaId);
  }

  inFlightOn(replicaId: string): number {
    return this.inFlight.get(replicaId) ?? 0;
  }
}
