/**
 * Which arm of a canary by requests serves a request (pure, so it is unit-tested without a gateway).
 *
 * A request carrying a sticky key (a session header, else OpenAI's `user` field) always lands in the same bucket of
 * 1,000,000, so one conversation stays on one version for the life of the canary. The bucket is salted with the
 * canary itself (alias and canary version): the next canary draws a fresh set of users instead of sending the same
 * early adopters to every new version. A request without a key is split at random.
 */
export type CanaryArm = 'stable' | 'canary';

export interface RequestSplit {
  /** Distinguishes one canary from the next: e.g. `${aliasId}:${canaryVersionId}`. */
  salt: string;
  /** Percent of requests for the canary, 0-100 (fractions allowed). */
  requestShare: number;
}

const BUCKETS = 1_000_000;

/** 32-bit FNV-1a over UTF-16 code units, finished with murmur3's fmix32 so near keys (user-1, user-2) spread out. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function stickyBucket(salt: string, key: string): number {
  return hash32(`${salt}\u0000${key}`) % BUCKETS;
}

export function chooseArm(split: RequestSplit, stickyKey: string | null, random: () => number = Math.random): CanaryArm {
  if (split.requestShare <= 0) return 'stable';
  if (split.requestShare >= 100) return 'canary';
  const bucket = stickyKey === null ? Math.floor(random() * BUCKETS) : stickyBucket(split.salt, stickyKey);
  return bucket < Math.round(split.requestShare * (BUCKETS / 100)) ? 'canary' : 'stable';
}

/**
 * The request's sticky key: the session header when present (the more specific of the two: one user may hold
 * several conversations), else the body's `user` string. Prefixed so a session id never collides with a user id.
 */
export function stickyKeyOf(sessionHeader: string | string[] | undefined, user: unknown): string | null {
  const session = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
  if (session) return `s:${session}`;
  if (typeof user === 'string' && user !== '') return `u:${user}`;
  return null;
}
