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

export interface BucketState {
  kind: 'requests' | 'tokens';
  limit: number;
  cost: number;
  /** Tokens left in the bucket after this request (before it, when refused). */
  remaining: number;
}

export interface LimitVerdict {
  allowed: boolean;
  /** When refused: how long until every refusing bucket holds enough again. */
  retryAfterMs: number;
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

const refill = (b: BucketState, target: number) => Math.max(0, ((target - b.remaining) * 60_000) / b.limit);

/** The first bucket of a kind with the least share left (runs per request: one pass, nothing sorted). */
function tightest(buckets: BucketState[], kind: BucketState['kind']): BucketState | null {
  let out: BucketState | null = null;
  for (const b of buckets) if (b.kind === kind && (out === null || b.remaining / b.limit < out.remaining / out.limit)) out = b;
  return out;
}

export function verdictOf(allowed: boolean, buckets: BucketState[]): LimitVerdict {
  let retryAfterMs = 0;
  if (!allowed) {
    for (const b of buckets) {
      const need = Math.min(b.cost, b.limit);
      if (b.remaining < need) retryAfterMs = Math.max(retryAfterMs, refill(b, need));
    }
  }
  return { allowed, retryAfterMs, headers: headersOf(tightest(buckets, 'requests'), tightest(buckets, 'tokens')) };
}

/**
 * The tightest bucket of each kind as OpenAI's headers, built as object literals (one shape from the start, not keys
 * added in a loop): this runs, and node's writeHead walks the result, on every request under a limit.
 */
function headersOf(r: BucketState | null, t: BucketState | null): Record<string, string> {
  const requests = r && { 'x-ratelimit-limit-requests': String(r.limit), 'x-ratelimit-remaining-requests': remainingOf(r), 'x-ratelimit-reset-requests': resetOf(r) };
  const tokens = t && { 'x-ratelimit-limit-tokens': String(t.limit), 'x-ratelimit-remaining-tokens': remainingOf(t), 'x-ratelimit-reset-tokens': resetOf(t) };
  return requests && tokens ? Object.assign(requests, tokens) : (requests ?? tokens ?? {});
}

const remainingOf = (b: BucketState) => String(Math.max(0, Math.floor(b.remaining)));
const resetOf = (b: BucketState) => formatDuration(refill(b, b.limit));

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
