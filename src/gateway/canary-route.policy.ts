import { Injectable } from '@nestjs/common';
import { chooseArm, stickyKeyOf } from '../serving/canary-split';
import type { ReplicaChoice } from '../serving/replica-router';
import { RequestContext, RoutePolicy } from './gateway-hooks';
import type { Route, RouteKind } from './routing-snapshot';

/**
 * The replica-choice seam with canaries by requests: for an alias that runs one on a pool, the request's sticky arm
 * (canary-split.ts) decides whether that pool's replicas are asked for the alias (stable) or for the candidate's
 * immutable name (canary). While no replica has the candidate loaded yet, the stable arm serves: a canary must not
 * make an alias unavailable.
 */
@Injectable()
export class CanaryRoutePolicy extends RoutePolicy {
  override candidates(route: Extract<Route, { kind: Exclude<RouteKind, 'provider'> }>, ctx: RequestContext): readonly ReplicaChoice[] {
    const canaries = route.kind === 'alias' ? route.requestCanaries : undefined;
    if (!canaries) return route.candidates;
    const key = stickyKeyOf(ctx.session ?? undefined, ctx.user);
    let out: readonly ReplicaChoice[] = route.candidates;
    for (const c of canaries) {
      if (c.candidates.length === 0 || chooseArm(c, key) !== 'canary') continue;
      out = [...out.filter((x) => x.poolId !== c.poolId), ...c.candidates];
    }
    return out;
  }
}
