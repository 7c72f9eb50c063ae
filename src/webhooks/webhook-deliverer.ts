import { Injectable, Logger } from '@nestjs/common';
import { newId } from '../common/ids';
import { SecretBox } from '../common/secret-box';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { webhookBody } from './webhook-events';
import { SendResult, WebhookSender } from './webhook-sender';
import { webhookHeaders } from './webhook-signature';
import { WebhookQueue } from './webhooks.queue';

/** A claimed attempt holds its delivery this long beyond the request's own time limit; then the sweep may retry it. */
const CLAIM_GRACE_MS = 60_000;
/** BullMQ's delay runs on the enqueuer's clock: a task may arrive a little before the row says it is due. */
const EARLY_TOLERANCE_MS = 1000;

export type AttemptOutcome = 'skipped' | 'succeeded' | 'retrying' | 'failed' | 'endpoint_disabled';

/** The delay before attempt `attempt + 1` after `attempt` failed: base x 2^(attempt-1). */
export function retryDelayMs(baseMs: number, attempt: number): number {
  return baseMs * 2 ** (attempt - 1);
}

/**
 * One delivery attempt: claim the delivery (a compare-and-set on its attempt count, so two workers never send the
 * same attempt), sign and POST it, then record the attempt and the delivery's next state in one transaction. 2xx:
 * succeeded. 410 Gone: the receiver says the endpoint is no more, so it is disabled and its pending deliveries fail.
 * Anything else: retried with exponential backoff until WEBHOOK_MAX_ATTEMPTS.
 */
@Injectable()
export class WebhookDeliverer {
  private readonly logger = new Logger(WebhookDeliverer.name);

  constructor(
    private readonly prisma: PrismaService,
    private readonly sender: WebhookSender,
    private readonly secrets: SecretBox,
    private readonly queue: WebhookQueue,
    private readonly config: Config,
  ) {}

  async attempt(deliveryId: string, attempt: number): Promise<AttemptOutcome> {
    const d = await this.prisma.webhookDelivery.findUnique({ where: { id: deliveryId }, include: { endpoint: true, message: true } });
    if (!d || d.status !== 'pending' || d.attempts + 1 !== attempt) return 'skipped'; // done, or a stale task
    if (d.nextAttemptAt && d.nextAttemptAt.getTime() > Date.now() + EARLY_TOLERANCE_MS) return 'skipped'; // not due, or claimed
    if (!d.endpoint.enabled) {
      await this.prisma.webhookDelivery.updateMany({
        where: { id: d.id, status: 'pending' },
        data: { status: 'failed', nextAttemptAt: null, lastError: `endpoint disabled: ${d.endpoint.disabledReason ?? 'disabled'}` },
      });
      return 'failed';
    }
    const timeoutMs = this.config.env.WEBHOOK_TIMEOUT_MS;
    const claimed = await this.prisma.webhookDelivery.updateMany({
      where: { id: d.id, status: 'pending', attempts: d.attempts },
      data: { attempts: attempt, nextAttemptAt: new Date(Date.now() + timeoutMs + CLAIM_GRACE_MS) },
    });
    if (claimed.count === 0) return 'skipped';

    const body = webhookBody(d.message);
    let secret: string | null = null;
    try {
      secret = this.secrets.open(d.endpoint.secretSealed, { purpose: 'webhook_endpoint.secret', id: d.endpoint.id });
    } catch (err) {
      // SECRETS_KEY changed without re-sealing: recorded as a failed attempt (retried: the key may come back).
      this.logger.error({ err, endpointId: d.endpointId }, 'cannot open a webhook endpoint secret');
    }
    const result: SendResult = secret
      ? await this.sender.post(d.endpoint.url, webhookHeaders(secret, d.message.id, body), body, timeoutMs)
      : { status: null, error: "not sent: the endpoint's secret cannot be opened with the configured SECRETS_KEY", responseMs: 0 };
    const outcome = this.judge(result, attempt);
    const nextAttemptAt = outcome === 'retrying' ? new Date(Date.now() + retryDelayMs(this.config.env.WEBHOOK_RETRY_BASE_MS, attempt)) : null;

    await this.prisma.$transaction(async (tx) => {
      await tx.webhookAttempt.create({
        data: { id: newId.webhookAttempt(), deliveryId: d.id, projectId: d.projectId, attempt, status: result.status, error: result.error, responseMs: result.responseMs },
      });
      await tx.webhookDelivery.update({
        where: { id: d.id },
        data: {
          status: outcome === 'succeeded' ? 'succeeded' : outcome === 'retrying' ? 'pending' : 'failed',
          nextAttemptAt,
          lastStatus: result.status,
          lastError: result.error,
          lastResponseMs: result.responseMs,
        },
      });
      if (outcome === 'endpoint_disabled') {
        const reason = `the receiver answered 410 Gone to ${d.message.id} (attempt ${attempt})`;
        await tx.webhookEndpoint.update({ where: { id: d.endpointId }, data: { enabled: false, disabledReason: reason } });
        await tx.webhookDelivery.updateMany({
          where: { endpointId: d.endpointId, status: 'pending' },
          data: { status: 'failed', nextAttemptAt: null, lastError: `endpoint disabled: ${reason}` },
        });
      }
    });

    if (outcome === 'retrying') await this.queue.attempt({ deliveryId: d.id, attempt: attempt + 1 }, nextAttemptAt!.getTime() - Date.now());
    if (outcome === 'endpoint_disabled') this.logger.warn({ endpointId: d.endpointId, projectId: d.projectId }, 'webhook endpoint answered 410 Gone; disabled');
    else if (outcome === 'failed') this.logger.warn({ deliveryId: d.id, projectId: d.projectId, attempts: attempt, error: result.error }, 'webhook delivery failed for good');
    return outcome;
  }

  private judge(result: SendResult, attempt: number): Exclude<AttemptOutcome, 'skipped'> {
    if (result.status !== null && result.status >= 200 && result.status < 300) return 'succeeded';
    if (result.status === 410) return 'endpoint_disabled';
    return attempt >= this.config.env.WEBHOOK_MAX_ATTEMPTS ? 'failed' : 'retrying';
  }
}
