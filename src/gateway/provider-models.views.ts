import { z } from 'zod';
import type { ProviderModel } from '../generated/prisma/client';

/** A provider model as the API shows it: whether it has a key, never the key. */
export const providerModelObject = z.object({
  object: z.literal('provider_model'),
  id: z.string(),
  name: z.string().describe('what clients send as `model`'),
  base_url: z.string(),
  model: z.string().describe("the provider's id for the model"),
  has_api_key: z.boolean(),
  created_at: z.number(),
});
export const deletedProviderModel = z.object({ object: z.literal('provider_model.deleted'), name: z.string(), deleted: z.literal(true) });

export function providerModelView(p: ProviderModel): z.infer<typeof providerModelObject> {
  return {
    object: 'provider_model',
    id: p.id,
    name: p.name,
    base_url: p.baseUrl,
    model: p.upstreamModel,
    has_api_key: p.apiKeySealed !== null,
    created_at: Math.floor(p.createdAt.getTime() / 1000),
  };
}
