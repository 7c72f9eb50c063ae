import type { ReplicaChoice } from '../serving/replica-router';
import type { Route, RouteKind } from './routing-snapshot';

/** How one inference request ended, for whoever meters, limits or measures (the observer seam). */
export interface InferenceRecord {
  requestId: string;
  endpoint: 'chat' | 'completions';
  /** The model name the client sent. */
  model: string;
  kind: RouteKind | null;
  versionId: string | null;
  poolId: string | null;
  replicaId: string | null;
  providerId: string | null;
  projectId: string | null;
  keyId: string | null;
  stream: boolean;
  status: number;
  /** null on success; else what failed: bad_request, unauthorized, model_not_found, no_replica, upstream_status, upstream_connect, upstream_timeout, too_large, client_abort, ... */
  errorKind: string | null;
  /** Always from the upstream's own count (streams ask for it even when the client did not). */
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  latencyMs: number;
  /** Streams: time to the first content event. */
  ttftMs: number | null;
  requestBytes: number;
  responseBytes: number;
  retried: boolean;
}

/** Told about every inference request once it ended. Must not throw or block (it runs on the hot path). */
export abstract class InferenceObserver {
  abstract onRequestEnd(record: InferenceRecord): void;
}

export const INFERENCE_OBSERVERS = Symbol('INFERENCE_OBSERVERS');

/** Who is asking, for a policy that splits traffic (a canary arm per user, a limit per key). */
export interface RequestContext {
  projectId: string;
  keyId: string;
  /** OpenAI's `user` field when sent (sticky canary arms). */
  user: string | null;
}

/**
 * The replica-choice seam: which of the route's candidates this request may go to (a request-share canary picks an
 * arm here). The default keeps them all; the router then takes the least busy.
 */
export class RoutePolicy {
  candidates(route: Extract<Route, { kind: Exclude<RouteKind, 'provider'> }>, _ctx: RequestContext): readonly ReplicaChoice[] {
    return route.candidates;
  }
}
