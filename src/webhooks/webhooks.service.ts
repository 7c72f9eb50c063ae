import { Injectable } from '@nestjs/common';
import { notFound } from '../common/domain-error';
import { newId } from '../common/ids';
import { SecretBox } from '../common/secret-box';
import { PrismaService } from '../db/prisma.service';
import { WebhookEndpoint } from '../generated/prisma/client';
import { WebhookEventType } from './webhook-events';
import { newWebhookSecret } from './webhook-signature';
import { TargetGuard } from '../common/net/target-guard';

export interface CreateEndpoint {
  url: string;
  /** Empty: every event type. */
  eventTypes: WebhookEventType[];
  description?: string;
}

/** An endpoint with its signing secret in clear: only ever the answer to create and rotate. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpoint;
  secret: string;
}

/** Webhook endpoints of a project and their delivery log. Every query filters by the project. */
@Injectable()
export class WebhooksService {
  constructor(private readonly prisma: PrismaService, private readonly secrets: SecretBox, private readonly guard: TargetGuard) {}

  async createEndpoint(projectId: string, input: CreateEndpoint): Promise<EndpointWithSecret> {
    await this.guard.assertAllowed(input.url, 'url');
    const secret = newWebhookSecret();
    const id = newId.webhookEndpoint();
    const endpoint = await this.prisma.webhookEndpoint.create({
      data: {
        id,
        projectId,
        url: input.url,
        eventTypes: [...new Set(input.eventTypes)],
        secretSealed: this.secrets.seal(secret, { purpose: 'webhook_endpoint.secret', id }),
        description: input.description ?? null,
      },
    });
    return { endpoint, secret };
  }

  listEndpoints(projectId: string): Promise<WebhookEndpoint[]> {
    return this.prisma.webhookEndpoint.findMany({ where: { projectId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  async getEndpoint(projectId: string, id: string): Promise<WebhookEndpoint> {
    const endpoint = await this.prisma.webhookEndpoint.findFirst({ where: { id, projectId } });
    if (!endpoint) throw notFound('webhook endpoint', id, 'endpoint_id');
    return endpoint;
  }

  /** Its deliveries and their log go with it; messages stay for other endpoints. */
  async deleteEndpoint(projectId: string, id: string): Promise<void> {
    const { count } = await this.prisma.webhookEndpoint.deleteMany({ where: { id, projectId } });
    if (count === 0) throw notFound('webhook endpoint', id, 'endpoint_id');
  }

  /**
   * A new secret at once: attempts from now on are signed with it (a retry of an older message too), the old one
   * stops working. The new one is in this answer only.
   */
  async rotateSecret(projectId: string, id: string): Promise<EndpointWithSecret> {
    await this.getEndpoint(projectId, id);
    const secret = newWebhookSecret();
    const endpoint = await this.prisma.webhookEndpoint.update({ where: { id }, data: { secretSealed: this.secrets.seal(secret, { purpose: 'webhook_endpoint.secret', id }) } });
    return { endpoint, secret };
  }

  /** The delivery log, newest first, each delivery with its attempts. */
  async deliveries(projectId: string, endpointId: string, page: { after?: string; limit: number }) {
    await this.getEndpoint(projectId, endpointId);
    if (page.after && !(await this.prisma.webhookDelivery.findFirst({ where: { id: page.after, projectId, endpointId } }))) {
      throw notFound('webhook delivery', page.after, 'after');
    }
    return this.prisma.webhookDelivery.findMany({
      where: { projectId, endpointId },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.limit + 1,
      ...(page.after ? { cursor: { id: page.after }, skip: 1 } : {}),
      include: { message: { select: { id: true, type: true, createdAt: true } }, log: { orderBy: { attempt: 'asc' } } },
    });
  }
}
