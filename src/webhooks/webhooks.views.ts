import type { WebhookEndpoint } from '../generated/prisma/client';
import type { WebhooksService } from './webhooks.service';

/** API shapes of webhook objects (snake_case, unix seconds). The secret appears only in endpointWithSecretView. */
const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

export function endpointView(e: WebhookEndpoint) {
  return {
    object: 'webhook.endpoint' as const,
    id: e.id,
    url: e.url,
    /** Empty: every event type. */
    event_types: e.eventTypes,
    description: e.description,
    enabled: e.enabled,
    disabled_reason: e.disabledReason,
    created_at: unix(e.createdAt),
  };
}

export function endpointWithSecretView(e: WebhookEndpoint, secret: string) {
  return { ...endpointView(e), secret };
}

type Delivery = Awaited<ReturnType<WebhooksService['deliveries']>>[number];

export function deliveryView(d: Delivery) {
  return {
    object: 'webhook.delivery' as const,
    id: d.id,
    endpoint_id: d.endpointId,
    message_id: d.message.id,
    type: d.message.type,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? unix(d.nextAttemptAt) : null,
    last_status: d.lastStatus,
    last_error: d.lastError,
    response_ms: d.lastResponseMs,
    created_at: unix(d.createdAt),
    log: d.log.map((a) => ({ attempt: a.attempt, status: a.status, error: a.error, response_ms: a.responseMs, at: unix(a.createdAt) })),
  };
}
