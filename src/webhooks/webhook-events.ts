import { z } from 'zod';

/**
 * Every event type a webhook endpoint can subscribe to. `data` of each:
 * - fine_tuning.job.succeeded | failed | cancelled: { id, object, status, model, fine_tuned_model, error, finished_at }
 * - adapter.deployed: { pool, adapter, version } (a version got a deployment row on a pool)
 * - adapter.alias.moved: { pool, adapter, action, from_version, to_version, canary_replicas, canary_request_share, actor, reason }
 * - eval.run.completed: an eval run scored every item of every target (src/evals/eval-runner.ts).
 */
export const WEBHOOK_EVENT_TYPES = [
  'fine_tuning.job.succeeded',
  'fine_tuning.job.failed',
  'fine_tuning.job.cancelled',
  'adapter.deployed',
  'adapter.alias.moved',
  'eval.run.completed',
] as const;
export const webhookEventType = z.enum(WEBHOOK_EVENT_TYPES);
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The request body of every delivery; `timestamp` is when the event happened, the same on every retry. */
export function webhookBody(message: { type: string; createdAt: Date; payload: unknown }): string {
  return JSON.stringify({ type: message.type, timestamp: message.createdAt.toISOString(), data: message.payload });
}
