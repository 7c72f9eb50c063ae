import { Injectable, Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { Principal } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { RateLimiter } from '../limits/rate-limiter';
import { LimitPlan } from '../limits/local-allowance';
import { estimateTokens, LimitVerdict, noLimits } from '../limits/rate-limits';
import { Metrics } from '../metrics/metrics';
import type { InferenceBody } from './inference-request';
import { headersForHead } from './response-head';

/**
 * OpenAI's 429 for a rate limit: `type` says which kind of limit (requests or tokens), and the message says the
 * limit, what the request asked for and when to come back, as OpenAI's does.
 */
function refusal(verdict: LimitVerdict, estimate: number): DomainError {
  const b = verdict.refusedBy;
  const kind = b?.kind ?? 'requests';
  const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
  const what = kind === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)';
  const detail = b ? `: Limit ${b.limitText}, Remaining ${Math.max(0, Math.floor(b.remaining))}, Requested ${kind === 'requests' ? 1 : estimate}` : '';
  return new DomainError('rate_limit_exceeded', `Rate limit reached on ${what} for this key or project${detail}. Please try again in ${seconds}s.`, null, {
    retryAfterSeconds: seconds,
    retryAfterMs: Math.max(1, verdict.retryAfterMs),
    type: kind,
  });
}

/** The header that keeps a conversation on one canary arm (lower case: node's incoming header names). */
export const SessionHeader = 'x-session-id';

/** Settles an admitted request's token estimate with the tokens it really used. */
export type Settle = (actualTokens: number) => void;

/**
 * The gateway's per-key and per-project limits on its hot path: admit (or refuse with 429) before any work, with
 * OpenAI's x-ratelimit-* headers on the answer either way, and settle the token estimate with the real usage when
 * the request ends. Keys without limits cost nothing. If Redis cannot be reached the request is admitted (limits
 * protect capacity; refusing every request because the limiter is down would take the whole gateway out).
 */
@Injectable()
export class GatewayAdmission {
  private readonly logger = new Logger('GatewayAdmission');
  /** The settlement batch already watched for failure (one warning per failed batch, not one per request). */
  private watched: Promise<void> | null = null;
  /** A principal lives as long as the key table that holds it: the buckets of its limits are found once. */
  private readonly plans = new WeakMap<Principal, LimitPlan>();

  constructor(private readonly limiter: RateLimiter, private readonly metrics: Metrics) {}

  /**
   * Null when no limit applies (most keys have none). Else the settle function of the admitted request, at once
   * when this gateway's allowance covers it, or a promise of it when Redis decides; a refusal throws (or rejects
   * with) the 429.
   */
  admit(who: Principal, body: InferenceBody, res: ServerResponse): Settle | Promise<Settle | null> | null {
    if (!who.limits || noLimits(who.limits)) return null;
    let plan = this.plans.get(who);
    if (!plan) this.plans.set(who, (plan = this.limiter.plan({ projectId: who.projectId, keyId: who.keyId, ...who.limits })));
    const estimate = estimateTokens(body);
    const headers = this.limiter.admitNow(plan, estimate);
    if (!headers) return this.askRedis(plan, estimate, res);
    headersForHead(res, headers);
    return this.settler(plan, estimate);
  }

  private async askRedis(plan: LimitPlan, estimate: number, res: ServerResponse): Promise<Settle | null> {
    let verdict;
    try {
      verdict = await this.limiter.admitInRedis(plan, estimate);
    } catch (err) {
      this.logger.warn({ error: (err as Error).message }, 'rate limiter unreachable: request admitted unchecked');
      return null;
    }
    return this.decide(verdict, plan, estimate, res);
  }

  private decide(verdict: LimitVerdict, plan: LimitPlan, estimate: number, res: ServerResponse): Settle {
    headersForHead(res, verdict.headers);
    if (!verdict.allowed) {
      this.metrics.rateLimited.inc();
      throw refusal(verdict, estimate);
    }
    return this.settler(plan, estimate);
  }

  private settler(plan: LimitPlan, estimate: number): Settle {
    return (actual) => {
      const batch = this.limiter.settle(plan, estimate, actual);
      if (batch === null || batch === this.watched) return;
      this.watched = batch;
      batch.catch((err: Error) => this.logger.warn({ error: err.message }, 'rate limiter settle failed: the batch of token counts is lost'));
    };
  }
}
