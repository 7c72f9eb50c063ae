/**
 * What a target would cost to run, from what the eval measured, so accuracy can be weighed against the bill.
 *
 * API target (a stock OpenAI model, prices.ts), over the eval's requests:
 *   usd = (uncached input x price.input + cached input x price.cached_input + output x price.output) / 1e6
 *   usd_per_request = usd / requests;  usd_per_1m_tokens = usd / (input + output tokens) x 1e6
 *   (blended at the eval's input/output mix; output includes reasoning tokens, which OpenAI bills as output).
 * Self-hosted target (a pool's base model or an adapter on it), one replica = `gpus` GPUs:
 *   tokens_per_second = (input + output tokens) / wall seconds of the eval, at the concurrency it ran with
 *   usd_per_hour = usd_per_gpu_hour x gpus;  usd_per_1m_tokens = usd_per_hour / (tokens_per_second x 3600) x 1e6
 * Monthly projection at V tokens/day (30-day month):
 *   API: V x 30 x usd_per_1m_tokens / 1e6.
 *   Self-hosted: it runs 24/7, so it costs per replica-hour whatever the load:
 *   replicas = max(1, ceil(V / 86400 / tokens_per_second));  usd = replicas x usd_per_hour x 24 x 30.
 * Break-even against an API model priced a = usd per token (C = usd_per_hour x 720, the monthly cost of a replica;
 *   cap = tokens_per_second x 86400, the tokens/day a replica carries):
 *   self-hosting first costs no more than the API at V1 = C / (30 a), if V1 <= cap (else never: null).
 *   Adding a replica jumps the cost by C, so just past each replica's capacity the API can be cheaper again; with
 *   rho = V1 / cap, self-hosting is never dearer from (R - 1) x V1 on, R = ceil(1 / (1 - rho)).
 *
 * What this ignores, so read the numbers as a floor for self-hosting: traffic peaks (load is assumed flat over the
 * day; real peaks need headroom), scale-to-zero, ops and engineering time, storage and network, reserved vs
 * on-demand GPU pricing beyond the $/GPU-hour given, several adapters sharing one pool's GPUs (which divides the
 * cost), the Batch API and flex discounts, rate limits, and that throughput depends on the prompt/output mix and the
 * concurrency the eval ran at (a busier server usually batches better). Tokens are each target's own count: models
 * need different numbers of tokens for the same work (tokenizers; reasoning), so compare work with usd_per_request,
 * and give breakEven the API's price of the same work in the self-hosted target's tokens (sameWorkUsdPer1m).
 */
import { ModelPrice } from './prices';

export const DAYS_PER_MONTH = 30;
export const HOURS_PER_MONTH = 24 * DAYS_PER_MONTH;
const SECONDS_PER_DAY = 86_400;
export const DEFAULT_DAILY_VOLUMES: readonly number[] = [1_000_000, 10_000_000];

export interface ApiUsage {
  requests: number;
  input_tokens: number;
  /** Of input_tokens. */
  cached_input_tokens: number;
  output_tokens: number;
}

export interface ApiCost {
  usd_total: number;
  usd_per_request: number | null;
  usd_per_1m_tokens: number | null;
}

export function apiCost(price: Pick<ModelPrice, 'input' | 'cached_input' | 'output'>, usage: ApiUsage): ApiCost {
  nonNegative(usage);
  if (usage.cached_input_tokens > usage.input_tokens) throw new RangeError('cached_input_tokens are part of input_tokens and cannot exceed them');
  const usd = ((usage.input_tokens - usage.cached_input_tokens) * price.input + usage.cached_input_tokens * price.cached_input + usage.output_tokens * price.output) / 1e6;
  const tokens = usage.input_tokens + usage.output_tokens;
  return {
    usd_total: usd,
    usd_per_request: usage.requests > 0 ? usd / usage.requests : null,
    usd_per_1m_tokens: tokens > 0 ? (usd / tokens) * 1e6 : null,
  };
}

export interface SelfHostedRun {
  usd_per_gpu_hour: number;
  /** GPUs of one replica. */
  gpus: number;
  requests: number;
  /** Input + output tokens over the eval. */
  total_tokens: number;
  /** Wall time of the eval, first request sent to last answer received. */
  wall_seconds: number;
}

export interface SelfHostedCost {
  usd_per_hour: number;
  /** Per replica, at the eval's concurrency; 0 when the eval produced no tokens. */
  tokens_per_second: number;
  tokens_per_request: number | null;
  usd_per_1m_tokens: number | null;
  usd_per_request: number | null;
}

export function selfHostedCost(run: SelfHostedRun): SelfHostedCost {
  nonNegative(run);
  if (run.wall_seconds <= 0) throw new RangeError('wall_seconds must be > 0');
  const usdPerHour = run.usd_per_gpu_hour * run.gpus;
  const tps = run.total_tokens / run.wall_seconds;
  const rps = run.requests / run.wall_seconds;
  return {
    usd_per_hour: usdPerHour,
    tokens_per_second: tps,
    tokens_per_request: run.requests > 0 ? run.total_tokens / run.requests : null,
    usd_per_1m_tokens: tps > 0 ? (usdPerHour / (tps * 3600)) * 1e6 : null,
    usd_per_request: rps > 0 ? usdPerHour / (rps * 3600) : null,
  };
}

export type CostBasis = { kind: 'api'; usd_per_1m_tokens: number | null } | { kind: 'self_hosted'; usd_per_hour: number; tokens_per_second: number };

export interface MonthlyCost {
  tokens_per_day: number;
  /** null when unknown: no tokens measured. */
  usd_per_month: number | null;
  /** Self-hosted only: replicas needed to carry the volume. */
  replicas: number | null;
}

export function monthlyProjection(basis: CostBasis, volumes: readonly number[] = DEFAULT_DAILY_VOLUMES): MonthlyCost[] {
  return volumes.map((v) => {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`a daily volume must be a finite number >= 0, got ${v}`);
    if (basis.kind === 'api') {
      return { tokens_per_day: v, usd_per_month: basis.usd_per_1m_tokens === null ? null : (v * DAYS_PER_MONTH * basis.usd_per_1m_tokens) / 1e6, replicas: null };
    }
    if (basis.tokens_per_second <= 0) return { tokens_per_day: v, usd_per_month: null, replicas: null };
    const replicas = Math.max(1, Math.ceil(v / SECONDS_PER_DAY / basis.tokens_per_second));
    return { tokens_per_day: v, usd_per_month: replicas * basis.usd_per_hour * HOURS_PER_MONTH, replicas };
  });
}

export interface BreakEven {
  /** The smallest daily volume at which self-hosting costs no more than the API; null: never. */
  tokens_per_day: number | null;
  /** From this daily volume on, self-hosting is never dearer (the replica steps no longer hand it back); null: never. */
  self_hosted_cheaper_from_tokens_per_day: number | null;
}

export function breakEven(self: { usd_per_hour: number; tokens_per_second: number }, apiUsdPer1mTokens: number): BreakEven {
  const never = { tokens_per_day: null, self_hosted_cheaper_from_tokens_per_day: null };
  if (!(apiUsdPer1mTokens > 0) || !(self.tokens_per_second > 0)) return never;
  const perReplicaMonth = self.usd_per_hour * HOURS_PER_MONTH;
  const capacity = self.tokens_per_second * SECONDS_PER_DAY;
  const first = perReplicaMonth / (DAYS_PER_MONTH * (apiUsdPer1mTokens / 1e6));
  if (first > capacity * (1 + 1e-12)) return never;
  const rho = first / capacity;
  // rho = 1: only a fully loaded replica ties the API, and the next replica's step loses again.
  if (rho >= 1 - 1e-12) return { tokens_per_day: first, self_hosted_cheaper_from_tokens_per_day: null };
  const r = Math.ceil(1 / (1 - rho) - 1e-9);
  return { tokens_per_day: first, self_hosted_cheaper_from_tokens_per_day: (r - 1) * first };
}

/**
 * The API's price of the same work, per 1M tokens of the self-hosted target: the API's cost per request over the
 * self-hosted target's tokens per request on the same items. A reasoning model that spends 3x the tokens is not
 * made to look cheap by a low per-token price.
 */
export function sameWorkUsdPer1m(apiUsdPerRequest: number, selfTokensPerRequest: number): number {
  if (!(selfTokensPerRequest > 0)) throw new RangeError('selfTokensPerRequest must be > 0');
  return (apiUsdPerRequest / selfTokensPerRequest) * 1e6;
}

function nonNegative(o: object) {
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw new RangeError(`${k} must be a finite number >= 0, got ${v}`);
  }
}
