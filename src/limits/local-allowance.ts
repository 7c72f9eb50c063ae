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

interface Held {
  tokens: number;
  /** The bucket's level in Redis after the last grant. */
  redisLevel: number;
  limit: number;
  at: number;
}

export interface LocalBucket {
  key: string;
  cost: number;
}

export class LocalAllowances {
  private readonly held = new Map<string, Held>();

  /**
   * Debits `cost` from each bucket's grant, all or none: the tokens left per bucket (as the headers report them),
   * or null when a grant is missing, expired or too small (the request goes to Redis).
   */
  take(buckets: readonly LocalBucket[], now: number): number[] | null {
    for (const b of buckets) {
      const h = this.held.get(b.key);
      if (!h || now - h.at > LEASE_MS || h.tokens < b.cost) return null;
    }
    return buckets.map((b) => {
      const h = this.held.get(b.key)!;
      h.tokens -= b.cost;
      return h.redisLevel + h.tokens;
    });
  }

  /** Debits from a live grant if it holds enough (a settlement that needs no round trip); false otherwise. */
  spend(key: string, tokens: number, now: number): boolean {
    const h = this.held.get(key);
    if (!h || now - h.at > LEASE_MS || h.tokens < tokens) return false;
    h.tokens -= tokens;
    return true;
  }

  /** Redis granted `tokens` more (0: none) and left the bucket at `redisLevel`. Returns what this gateway holds. */
  grant(key: string, limit: number, tokens: number, redisLevel: number, now: number, giveBack: (key: string, limit: number, tokens: number) => void): number {
    let h = this.held.get(key);
    if (h && now - h.at > LEASE_MS) {
      if (h.tokens > 0) giveBack(key, h.limit, h.tokens);
      this.held.delete(key);
      h = undefined;
    }
    if (!h) {
      if (tokens === 0) return 0;
      this.held.set(key, (h = { tokens: 0, redisLevel, limit, at: now }));
    }
    h.tokens += tokens;
    h.redisLevel = redisLevel;
    h.limit = limit;
    if (tokens > 0) h.at = now;
    return h.tokens;
  }

  /** Hands back what expired grants (all of them with `all`) still hold. */
  expire(now: number, giveBack: (key: string, limit: number, tokens: number) => void, all = false): void {
    for (const [key, h] of this.held) {
      if (!all && now - h.at <= LEASE_MS) continue;
      if (h.tokens > 0) giveBack(key, h.limit, h.tokens);
      this.held.delete(key);
    }
  }
}
