/**
 * The numbers an eval comparison reports, computed one documented way so two runs are comparable: accuracy with a
 * Wilson score interval (it stays inside [0, 1] and is honest at small n and near 0% or 100%, where the normal
 * approximation is not), latency percentiles by the nearest-rank method, and token totals.
 */

/** The two-sided 95% normal quantile, Phi^-1(0.975). */
export const Z_95 = 1.959963984540054;

export interface Proportion {
  k: number;
  n: number;
  /** k / n; null when n = 0. */
  rate: number | null;
  low: number;
  high: number;
}

/**
 * Wilson score interval for k successes in n trials:
 *   center = (p + z^2 / 2n) / (1 + z^2 / n),  half = z / (1 + z^2 / n) x sqrt(p(1 - p) / n + z^2 / 4n^2).
 * n = 0 says nothing about the rate, so the interval is all of [0, 1].
 */
export function wilsonInterval(k: number, n: number, z = Z_95): Proportion {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`k must be an integer in 0..${n}, got ${k}`);
  if (n === 0) return { k, n, rate: null, low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // Clamped: at k = 0 or k = n the bound is 0 or 1 exactly, but floating point can land a hair outside.
  return { k, n, rate: p, low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

/**
 * Nearest-rank percentile: the smallest value with at least q% of the values at or below it, i.e. the value at
 * 1-based rank ceil(q / 100 x n) of the sorted list. It is always one of the measured values (no interpolation),
 * so "p95 = 812 ms" means some request took 812 ms. null for no values.
 */
export function percentile(values: readonly number[], q: number): number | null {
  if (!(q > 0 && q <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${q}`);
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((q / 100) * sorted.length)) - 1];
}

export interface LatencySummary {
  count: number;
  mean: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** Over the requests that got an answer; failed requests have no latency and are counted by the caller. */
export function latencySummary(values: readonly number[]): LatencySummary {
  for (const v of values) if (!Number.isFinite(v) || v < 0) throw new RangeError(`a latency must be a finite number >= 0, got ${v}`);
  const mean = values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
  return { count: values.length, mean, p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99) };
}

export interface TokenUsage {
  input_tokens: number;
  /** Of input_tokens, those served from the provider's prompt cache (billed at the cached rate). */
  cached_input_tokens?: number;
  /** Including reasoning tokens: OpenAI bills o-series reasoning as output. */
  output_tokens: number;
}

export interface TokenTotals {
  requests: number;
  /** Requests that reported no usage (an error before any answer); not in the sums. */
  without_usage: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export function tokenTotals(usages: readonly (TokenUsage | null | undefined)[]): TokenTotals {
  const t: TokenTotals = { requests: usages.length, without_usage: 0, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0, total_tokens: 0 };
  for (const u of usages) {
    if (!u) {
      t.without_usage++;
      continue;
    }
    t.input_tokens += u.input_tokens;
    t.cached_input_tokens += u.cached_input_tokens ?? 0;
    t.output_tokens += u.output_tokens;
  }
  t.total_tokens = t.input_tokens + t.output_tokens;
  return t;
}
