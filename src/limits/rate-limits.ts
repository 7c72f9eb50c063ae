/**
 * The pure half of the gateway's limits: what applies to a request, how a verdict becomes OpenAI's headers, and
 * the token estimate a request is admitted with. The Redis half is rate-limiter.ts.
 */
export interface RateLimit {
  /** Requests per minute; null: no limit. */
  rpm: number | null;
  /** Tokens (prompt + completion) per minute; null: no limit. */
  tpm: number | null;
}

export interface Limits {
  projectId: string;
  keyId: string;
  key: RateLimit;
  project: RateLimit;
}

/**
 * What a verdict and its headers are made of: one bucket's kind, limit and level, with its limit and reset time
 * already spelled (SharedBucket keeps them, so a request under a large limit formats no number it formatted before).
 */
export interface BucketView {
  readonly kind: 'requests' | 'tokens';
  readonly limit: number;
  /** Tokens left after this request (before it, when it was refused). */
  readonly remaining: number;
  /** String(limit). */
  readonly limitText: string;
  /** formatDuration of the time until the bucket is full again. */
  resetText(): string;
}

/** What a request costs in a bucket: 1 in a requests bucket, its token estimate in a tokens bucket. */
export const costOf = (kind: BucketView['kind'], tokens: number): number => (kind === 'requests' ? 1 : tokens);

export interface LimitVerdict {
  allowed: boolean;
  /** When refused: how long until every refusing bucket holds enough again. */
  retryAfterMs: number;
  /** When refused: the bucket that makes the request wait longest (OpenAI's error `type`, requests or tokens). */
  refusedBy?: BucketView;
  /** OpenAI's x-ratelimit-* headers for the tightest limit of each kind; empty when no limit applies. */
  headers: Record<string, string>;
}

export const noLimits = (l: Pick<Limits, 'key' | 'project'>) => l.key.rpm === null && l.key.tpm === null && l.project.rpm === null && l.project.tpm === null;

/** Go's duration format, as OpenAI writes x-ratelimit-reset-*: 20ms, 1s, 1.5s, 6m0s. */
export function formatDuration(ms: number): string {
  const rounded = Math.max(0, Math.ceil(ms));
  if (rounded < 1000) return `${rounded}ms`;
  const seconds = rounded / 1000;
  if (seconds < 60) return `${trim(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${trim(seconds - minutes * 60)}s`;
}

const trim = (s: number) => String(Math.round(s * 1000) / 1000);

/** How long until a bucket at `remaining` holds `target` again, at limit/60000 a millisecond. */
export const refillMs = (limit: number, remaining: number, target: number) => Math.max(0, ((target - remaining) * 60_000) / limit);

/** The first bucket of a kind with the least share left (runs per request: one pass, nothing sorted). */
function tightest(buckets: readonly BucketView[], kind: BucketView['kind']): BucketView | null {
  let out: BucketView | null = null;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    if (b.kind === kind && (out === null || b.remaining / b.limit < out.remaining / out.limit)) out = b;
  }
  return out;
}

/** The verdict on a request of `tokens` (its estimate) whose buckets are as given. */
export function verdictOf(allowed: boolean, buckets: readonly BucketView[], tokens: number): LimitVerdict {
  if (allowed) return { allowed, retryAfterMs: 0, headers: limitHeaders(buckets) };
  let retryAfterMs = 0;
  let refusedBy: BucketView | undefined;
  for (const b of buckets) {
    const need = Math.min(costOf(b.kind, tokens), b.limit);
    if (b.remaining >= need) continue;
    const wait = refillMs(b.limit, b.remaining, need);
    if (refusedBy === undefined || wait > retryAfterMs) [retryAfterMs, refusedBy] = [wait, b];
  }
  return { allowed, retryAfterMs, refusedBy, headers: limitHeaders(buckets) };
}

/**
 * OpenAI's x-ratelimit-* headers for the tightest bucket of each kind (none without a limit), built as object
 * literals of one shape each, not keys added in a loop: this runs, and node's writeHead walks the result, on every
 * request under a limit.
 */
export function limitHeaders(buckets: readonly BucketView[]): Record<string, string> {
  const r = tightest(buckets, 'requests');
  const t = tightest(buckets, 'tokens');
  if (r && t) {
    return {
      'x-ratelimit-limit-requests': r.limitText, 'x-ratelimit-remaining-requests': remainingOf(r), 'x-ratelimit-reset-requests': r.resetText(),
      'x-ratelimit-limit-tokens': t.limitText, 'x-ratelimit-remaining-tokens': remainingOf(t), 'x-ratelimit-reset-tokens': t.resetText(),
    };
  }
  if (r) return { 'x-ratelimit-limit-requests': r.limitText, 'x-ratelimit-remaining-requests': remainingOf(r), 'x-ratelimit-reset-requests': r.resetText() };
  if (t) return { 'x-ratelimit-limit-tokens': t.limitText, 'x-ratelimit-remaining-tokens': remainingOf(t), 'x-ratelimit-reset-tokens': t.resetText() };
  return {};
}

/** Whole tokens left; as a small integer (limits are at most 1e9), which V8 spells faster than a double. */
function remainingOf(b: BucketView): string {
  const n = Math.floor(b.remaining);
  return n <= 0 ? '0' : String(n < 2 ** 31 ? n | 0 : n);
}

/**
 * Tokens a request is admitted with before its answer is known: its text at 4 characters a token (the rule of
 * thumb OpenAI documents for English; the real count comes back in the usage block and is settled then) plus the
 * completion it asks room for. Cheap on purpose: the hot path must not tokenize.
 */
export function estimateTokens(body: Record<string, unknown>): number {
  const chars = textLength(body.messages ?? body.prompt);
  const room = typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : typeof body.max_tokens === 'number' ? body.max_tokens : 0;
  return Math.ceil(chars / 4) + Math.max(0, room);
}

function textLength(v: unknown, depth = 0): number {
  if (typeof v === 'string') return v.length;
  if (depth > 6 || v === null || typeof v !== 'object') return 0;
  let n = 0;
  if (Array.isArray(v)) for (const x of v) n += textLength(x, depth + 1);
  else for (const k in v) n += textLength((v as Record<string, unknown>)[k], depth + 1);
  return n;
}
