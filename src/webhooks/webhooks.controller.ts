import { Controller, Delete, Get, Post } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { listOf, pageOf, pageQuery, PageQuery, toList, toPage } from '../common/http/pagination';
import { ApiDoc, ZBody, ZParam, ZQuery } from '../common/http/zod-validation';
import { webhookEventType } from './webhook-events';
import { WebhooksService } from './webhooks.service';
import {
  deletedWebhookEndpoint,
  deliveryView,
  endpointView,
  endpointWithSecretView,
  webhookDeliveryObject,
  webhookEndpointObject,
  webhookEndpointWithSecretObject,
} from './webhooks.views';

const createEndpoint = z.object({
  url: z.string().max(2000).url().regex(/^https?:\/\//i, 'must be an http(s) URL'),
  /** Omitted or empty: every event type, including ones added later. */
  event_types: z.array(webhookEventType).max(50).default([]),
  description: z.string().max(500).optional(),
});
const endpointId = z.string().regex(/^ep_[A-Za-z0-9]+$/, 'an endpoint id (ep_...)');

/**
 * Webhook endpoints of the project and their delivery log. Deliveries are signed the Standard Webhooks way; the
 * signing secret is shown when an endpoint is created or its secret rotated, never again.
 */
@Controller('v1/webhooks/endpoints')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiDoc({ summary: 'Create a webhook endpoint; its whsec_ signing secret is in this answer only', tags: ['webhooks'], response: webhookEndpointWithSecretObject })
  async create(@ProjectId() projectId: string, @ZBody(createEndpoint) b: z.infer<typeof createEndpoint>) {
    const { endpoint, secret } = await this.webhooks.createEndpoint(projectId, { url: b.url, eventTypes: b.event_types, description: b.description });
    return endpointWithSecretView(endpoint, secret);
  }

  @Get()
  @ApiDoc({ summary: "List the project's webhook endpoints (never their secrets)", tags: ['webhooks'], response: listOf(webhookEndpointObject) })
  async list(@ProjectId() projectId: string) {
    return toList((await this.webhooks.listEndpoints(projectId)).map(endpointView));
  }

  @Get(':endpoint_id')
  @ApiDoc({ summary: 'A webhook endpoint (never its secret)', tags: ['webhooks'], response: webhookEndpointObject })
  async get(@ProjectId() projectId: string, @ZParam('endpoint_id', endpointId) id: string) {
    return endpointView(await this.webhooks.getEndpoint(projectId, id));
  }

  @Delete(':endpoint_id')
  @ApiDoc({ summary: 'Delete a webhook endpoint and its delivery log', tags: ['webhooks'], response: deletedWebhookEndpoint })
  async remove(@ProjectId() projectId: string, @ZParam('endpoint_id', endpointId) id: string): Promise<z.infer<typeof deletedWebhookEndpoint>> {
    await this.webhooks.deleteEndpoint(projectId, id);
    return { object: 'webhook.endpoint.deleted', id, deleted: true };
  }

  @Post(':endpoint_id/rotate_secret')
  @ApiDoc({ summary: 'Replace the signing secret at once; the new one is in this answer only', tags: ['webhooks'], response: webhookEndpointWithSecretObject })
  async rotate(@ProjectId() projectId: string, @ZParam('endpoint_id', endpointId) id: string) {
    const { endpoint, secret } = await this.webhooks.rotateSecret(projectId, id);
    return endpointWithSecretView(endpoint, secret);
  }

  @Get(':endpoint_id/deliveries')
  @ApiDoc({ summary: 'The delivery log of an endpoint, newest first: each delivery with every attempt', tags: ['webhooks'], response: pageOf(webhookDeliveryObject) })
  async deliveries(@ProjectId() projectId: string, @ZParam('endpoint_id', endpointId) id: string, @ZQuery(pageQuery) q: PageQuery) {
    return toPage(await this.webhooks.deliveries(projectId, id, q), q.limit, deliveryView);
  }
}
