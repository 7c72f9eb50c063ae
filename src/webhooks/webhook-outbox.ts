import { Injectable, Logger } from '@nestjs/common';
import { newId } from '../common/ids';
import { Prisma } from '../generated/prisma/client';
import { WebhookEventType } from './webhook-events';
import { WebhookQueue } from './webhooks.queue';

/**
 * Writes an event to the outbox inside the caller's transaction: the message and one delivery per enabled endpoint
 * of the project that subscribes to its type. So an event exists if and only if the state change it reports
 * committed. A project without a matching endpoint stores nothing (one indexed read).
 */
export async function recordWebhook(tx: Prisma.TransactionClient, projectId: string, type: WebhookEventType, data: Prisma.InputJsonObject): Promise<string | null> {
  const endpoints = await tx.webhookEndpoint.findMany({
    where: { projectId, enabled: true, OR: [{ eventTypes: { isEmpty: true } }, { eventTypes: { has: type } }] },
    select: { id: true },
  });
  if (endpoints.length === 0) return null;
  const messageId = newId.webhookMessage();
  await tx.webhookMessage.create({ data: { id: messageId, projectId, type, payload: data } });
  await tx.webhookDelivery.createMany({
    data: endpoints.map((e) => ({ id: newId.webhookDelivery(), projectId, endpointId: e.id, messageId })),
  });
  return messageId;
}

@Injectable()
export class WebhookOutbox {
  private readonly logger = new Logger(WebhookOutbox.name);

  constructor(private readonly queue: WebhookQueue) {}

  record(tx: Prisma.TransactionClient, projectId: string, type: WebhookEventType, data: Prisma.InputJsonObject): Promise<string | null> {
    return recordWebhook(tx, projectId, type, data);
  }

  /**
   * After the caller's transaction committed: deliver its new events now rather than at the next sweep. A failure
   * here loses nothing (the rows are committed and the worker's sweep finds them), so it must not fail the state
   * change that already happened; it is logged.
   */
  async dispatchSoon(): Promise<void> {
    try {
      await this.queue.enqueueDue({ freshOnly: true });
    } catch (err) {
      this.logger.warn({ err }, 'could not enqueue new webhook deliveries; the sweep will');
    }
  }
}
