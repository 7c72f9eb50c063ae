import { BucketView, costOf, formatDuration, refillMs } from './rate-limits';

/**
 * Tokens a gateway took from a shared Redis bucket ahead of use, so that most requests under a large limit are
 * admitted from memory, without a round trip. A grant is small (LEASE_SHARE of the limit, none at all below
 * 1/LEASE_SHARE: small limits stay exact, decided in Redis request by request), lives LEASE_MS, and what is left
 * of it then goes back to Redis. So the gateways together can run ahead of a limit by at most one grant each, and a
 * busy gateway asks Redis about once per grant instead of once per request.
 *
 * The x-ratelimit-remaining-* of a request admitted here is the bucket as Redis last reported it plus what this
 * gateway still holds: other gateways' use since then is not in it (a header for pacing, not a guarantee).
 */
export const LEASE_SHARE = 0.01;
export const LEASE_MS = 1000;

/** The grant a request asks for besides its own cost: a share of the limit, whole tokens, none for small limits. */
export const leaseFor = (limit: number): number => Math.floor(limit * LEASE_SHARE);

type BucketKind = BucketView['kind'];

/** Called with what an expired grant still held, for the caller to hand back to Redis. */
export type GiveBack = (bucket: SharedBucket, tokens: number) => void;

/**
 * One shared Redis bucket as this gateway sees it: its name and limit, and the grant it holds. There is one object
 * per bucket in a gateway, and every limit plan that uses the bucket points at it (rate-limiter.ts), so admitting
 * from a grant looks nothing up. It also keeps its limit and its last reset time spelled out for the headers: under
 * a large limit the reset stays the same millisecond for many requests. (On the gateway's hot path, a map lookup
 * per bucket and a number formatted per header cost more than the arithmetic: bench:gateway, CPU per request.)
 */
export class SharedBucket implements BucketView {
  /** Tokens of the grant not used yet. */
  held = 0;
  /** The bucket's level in Redis when it last answered. */
  redisLevel = 0;
  /** When the grant was made (it is live for LEASE_MS); -Infinity: never. */
  at = -Infinity;
  private _limit = 0;
  private _limitText = '';
  private resetMs = -1;
  private resetString = '';

  constructor(
    readonly key: string,
    readonly kind: BucketKind,
    limit: number,
  ) {
    this.limit = limit;
  }

  get limit(): number {
    return this._limit;
  }

  /** Limits change (a PUT on a key's or project's limits): the latest plan made for the bucket sets it. */
  set limit(limit: number) {
    if (limit === this._limit) return;
    this._limit = limit;
    this._limitText = String(limit);
  }

  get limitText(): string {
    return this._limitText;
  }

  /**
   * Tokens left as the headers report them: Redis's level at its last answer plus what this gateway holds, never
   * more than the limit (Redis refills its level while a grant is out, so the sum can pass the limit for a while).
   */
  get remaining(): number {
    return Math.min(this._limit, this.redisLevel + this.held);
  }

  resetText(): string {
    const ms = Math.ceil(refillMs(this._limit, this.remaining, this._limit));
    if (ms !== this.resetMs) {
      this.resetMs = ms;
      this.resetString = formatDuration(ms);
    }
    return this.resetString;
  }

  /** Whether a live grant holds `cost` (then LimitPlan.take may debit it). */
  covers(cost: number, now: number): boolean {
    return this.held >= cost && now - this.at <= LEASE_MS;
  }

  /** Debits a live grant if it holds enough (a settlement that needs no round trip); false otherwise. */
  spend(tokens: number, now: number): boolean {
    if (!this.covers(tokens, now)) return false;
    this.held -= tokens;
    return true;
  }

  /**
   * Redis granted `tokens` more (0: none) and left the bucket at `redisLevel`; an expired grant's rest is handed
   * back first. Returns what this gateway holds now.
   */
  grant(tokens: number, redisLevel: number, now: number, giveBack: GiveBack): number {
    this.expire(now, giveBack);
    this.held += tokens;
    this.redisLevel = redisLevel;
    if (tokens > 0) this.at = now;
    return this.held;
  }

  /** Hands back what an expired grant (any grant, with `all`) still holds. */
  expire(now: number, giveBack: GiveBack, all = false): void {
    if (this.held > 0 && (all || now - this.at > LEASE_MS)) {
      giveBack(this, this.held);
      this.held = 0;
    }
  }
}

/**
 * The buckets one set of limits applies (requests before tokens, key before project), made once per set and kept
 * by whoever admits under it (the gateway: one per API key).
 */
export class LimitPlan {
  constructor(public buckets: readonly SharedBucket[]) {}

  /**
   * Admits a request of `tokens` (its estimate) from the live grants, all buckets or none: true when every grant
   * covered it (and was debited), false when one is missing, expired or too small (the request goes to Redis).
   */
  take(tokens: number, now: number): boolean {
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) if (!buckets[i].covers(costOf(buckets[i].kind, tokens), now)) return false;
    for (let i = 0; i < buckets.length; i++) buckets[i].held -= costOf(buckets[i].kind, tokens);
    return true;
  }
}
