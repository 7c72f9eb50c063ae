import { z } from 'zod';
import type { WebhookEndpoint } from '../generated/prisma/client';
import type { WebhooksService } from './webhooks.service';

/** API shapes of webhook objects (snake_case, unix seconds). The secret appears only in endpointWithSecretView. */
const unix = (d: Date) => Math.floor(d.getTime() / 1000);

export const webhookEndpointObject = z.object({
  object: z.literal('webhook.endpoint'),
  id: z.string(),
  url: z.string(),
  event_types: z.array(z.string()).describe('empty: every event type, including ones added later'),
  description: z.string().nullable(),
  enabled: z.boolean(),
  disabled_reason: z.string().nullable().describe('why it stopped receiving (the receiver answered 410 Gone); null while enabled'),
  created_at: z.number(),
});
/** The answer to create and rotate_secret only: the whsec_ signing secret, shown this once. */
export const webhookEndpointWithSecretObject = webhookEndpointObject.extend({
  secret: z.string().describe('whsec_ + base64 of 32 random bytes; shown in this answer only'),
});
export const deletedWebhookEndpoint = z.object({ object: z.literal('webhook.endpoint.deleted'), id: z.string(), deleted: z.literal(true) });

const attemptObject = z.object({
  attempt: z.number(),
  status: z.number().nullable().describe('HTTP status of the answer; null when none came'),
  error: z.string().nullable(),
  response_ms: z.number(),
  at: z.number(),
});
export const webhookDeliveryObject = z.object({
  object: z.literal('webhook.delivery'),
  id: z.string(),
  endpoint_id: z.string(),
  message_id: z.string().describe('the webhook-id header, the same on every retry and for every endpoint'),
  type: z.string().describe('the event type'),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attempts: z.number(),
  next_attempt_at: z.number().nullable().describe('when the next attempt is due; null unless pending'),
  last_status: z.number().nullable(),
  last_error: z.string().nullable(),
  response_ms: z.number().nullable(),
  created_at: z.number(),
  log: z.array(attemptObject).describe('every attempt, first to last'),
});

export function endpointView(e: WebhookEndpoint): z.infer<typeof webhookEndpointObject> {
  return {
    object: 'webhook.endpoint',
    id: e.id,
    url: e.url,
    event_types: e.eventTypes,
    description: e.description,
    enabled: e.enabled,
    disabled_reason: e.disabledReason,
    created_at: unix(e.createdAt),
  };
}

export function endpointWithSecretView(e: WebhookEndpoint, secret: string): z.infer<typeof webhookEndpointWithSecretObject> {
  return { ...endpointView(e), secret };
}

type Delivery = Awaited<ReturnType<WebhooksService['deliveries']>>[number];

export function deliveryView(d: Delivery): z.infer<typeof webhookDeliveryObject> {
  return {
    object: 'webhook.delivery',
    id: d.id,
    endpoint_id: d.endpointId,
    message_id: d.message.id,
    type: d.message.type,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? (d.nextAttemptAt ? unix(d.nextAttemptAt) : null) : null,
    last_status: d.lastStatus,
    last_error: d.lastError,
    response_ms: d.lastResponseMs,
    created_at: unix(d.createdAt),
    log: d.log.map((a) => ({ attempt: a.attempt, status: a.status, error: a.error, response_ms: a.responseMs, at: unix(a.createdAt) })),
  };
}
