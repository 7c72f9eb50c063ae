/**
 * What the stock OpenAI models cost per token, so an eval can put a tuned model's accuracy next to the bill of the
 * API models it should replace. Prices change and accounts negotiate them: every entry says when it was read and
 * where, and an operator overrides or adds entries with a JSON object (validated here; errors name the model and
 * the field). Batch API and flex-tier discounts are not modelled: these are standard-tier list prices.
 */
import { z } from 'zod';
import { DomainError } from '../common/domain-error';

export interface ModelPrice {
  /** USD per 1M input tokens not served from the prompt cache. */
  input: number;
  /** USD per 1M input tokens served from the prompt cache. */
  cached_input: number;
  /** USD per 1M output tokens, reasoning tokens included. */
  output: number;
  /** The day the price was read (YYYY-MM-DD). */
  as_of: string;
  source: string;
  /** The first day the provider served the model (YYYY-MM-DD), when known. */
  available_from?: string;
  /** The day the provider retired the model from its API (YYYY-MM-DD): a target for it warns from then on. */
  available_until?: string;
}

export type PriceTable = Readonly<Record<string, Readonly<ModelPrice>>>;

const LIST = { as_of: '2025-06-01', source: 'https://openai.com/api/pricing' };

/**
 * The models the project was designed to compare against, at their last list prices. OpenAI retired o3-mini and
 * o4-mini from its API on 2026-10-23 (public reports, partly verified): their rows stay, so old runs still price, and
 * a new target for them warns. Current models are configuration (EVAL_PRICES, EVAL_PRICES_FILE; an example with its
 * read dates is docs/evals/prices.example.json), not code: prices and line-ups change faster than releases.
 */
export const DEFAULT_PRICES: PriceTable = Object.freeze({
  'o3-mini': { input: 1.1, cached_input: 0.55, output: 4.4, ...LIST, available_from: '2025-01-31', available_until: '2026-10-23' },
  'o4-mini': { input: 1.1, cached_input: 0.275, output: 4.4, ...LIST, available_from: '2025-04-16', available_until: '2026-10-23' },
  'gpt-4o-mini': { input: 0.15, cached_input: 0.075, output: 0.6, ...LIST, available_from: '2024-07-18' },
  // What OpenAI bills for calling a fine-tuned gpt-4o-mini (`ft:gpt-4o-mini-2024-07-18:org:suffix:id`): the
  // baseline of a migration comparison.
  'ft:gpt-4o-mini': { input: 0.3, cached_input: 0.15, output: 1.2, ...LIST, available_from: '2024-07-18' },
});

const usd = z.number().finite().min(0).max(10_000);
const day = z.iso.date({ message: 'must be a date as YYYY-MM-DD' });
const fields = {
  input: usd,
  cached_input: usd,
  output: usd,
  as_of: day,
  source: z.string().min(1).max(2000),
  available_from: day.optional(),
  available_until: day.optional(),
};
/** An override of a known model may set only some fields; a new model must set them all. */
const partialEntry = z.object(fields).partial().strict();
const fullEntry = z.object(fields).strict();

/** The default table with `overrides` merged in, e.g. `{"o3-mini": {"input": 1.0, "as_of": "2025-09-01"}}`. */
export function priceTable(overrides: unknown = {}, base: PriceTable = DEFAULT_PRICES): PriceTable {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new DomainError('invalid_request', 'prices: expected a JSON object of model name -> price', 'prices');
  }
  const out: Record<string, ModelPrice> = { ...base };
  for (const [model, entry] of Object.entries(overrides)) {
    const known = base[model];
    const parsed = (known ? partialEntry : fullEntry).safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
      const param = field ? `prices.${model}.${field}` : `prices.${model}`;
      const missing = !known && issue.code === 'invalid_type' && typeof entry === 'object' && entry !== null && (entry as Record<string, unknown>)[field] === undefined;
      const why = missing ? 'required for a model that is not in the default table' : issue.message;
      throw new DomainError('invalid_request', `${param}: ${why}`, param);
    }
    const merged = { ...known, ...parsed.data } as ModelPrice;
    if (merged.available_from && merged.available_until && merged.available_until < merged.available_from) {
      throw new DomainError('invalid_request', `prices.${model}.available_until: is before available_from`, `prices.${model}.available_until`);
    }
    out[model] = merged;
  }
  return Object.freeze(out);
}

/**
 * The price of `model`, also for a dated snapshot name ("o3-mini-2025-01-31" -> "o3-mini") when the snapshot has no
 * entry of its own, and for an OpenAI fine-tuned model ("ft:gpt-4o-mini-2024-07-18:org:suffix:id") at its base's
 * fine-tuned row ("ft:gpt-4o-mini-2024-07-18", then "ft:gpt-4o-mini"). null when unknown: the caller decides whether
 * a missing price is an error.
 */
export function priceOf(table: PriceTable, model: string): Readonly<ModelPrice> | null {
  const undated = (name: string) => table[name] ?? table[name.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
  const fineTuned = /^ft:([^:]+):/.exec(model);
  return table[model] ?? (fineTuned ? undated(`ft:${fineTuned[1]}`) : undated(model)) ?? null;
}

/**
 * Why a model should not be a new target on `day` (YYYY-MM-DD): retired, or not yet served. null when it is current
 * or has no dates. A warning, not a refusal: a provider may still answer, and an OpenAI-compatible host may serve a
 * model under the same name.
 */
export function availabilityWarning(table: PriceTable, model: string, day: string): string | null {
  const price = priceOf(table, model);
  if (!price) return null;
  if (price.available_until && day >= price.available_until) {
    return `'${model}' was retired by its provider on ${price.available_until} (price table, read ${price.as_of}); calls to it will likely fail. Compare against a current model instead.`;
  }
  if (price.available_from && day < price.available_from) return `'${model}' is not available before ${price.available_from} (price table)`;
  return null;
}
