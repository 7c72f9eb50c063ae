import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { SecretBox } from '../common/secret-box';
import { PrismaService } from '../db/prisma.service';
import { EvalTarget } from '../generated/prisma/client';
import { ChatEndpoint } from './chat-target-client';

/** The name a self-hosted target is called by on its pool's replicas. */
export function servedName(t: Pick<EvalTarget, 'kind' | 'model' | 'adapterVersion'>): string {
  return t.kind === 'adapter' && t.adapterVersion !== null ? `${t.model}@v${t.adapterVersion}` : t.model;
}

/**
 * Where each call of a target goes. An API target has one endpoint (its key opened from the sealed column only
 * here, in the worker, and only for the call); a pool target spreads its calls over the pool's ready replicas.
 */
@Injectable()
export class TargetEndpoints {
  constructor(private readonly prisma: PrismaService, private readonly secrets: SecretBox) {}

  async picker(target: EvalTarget): Promise<() => ChatEndpoint> {
    const shape = { model: servedName(target), reasoning: target.reasoning, maxTokens: target.maxTokens, temperature: target.temperature, stream: target.stream };
    if (target.kind === 'api') {
      const endpoint: ChatEndpoint = { ...shape, baseUrl: target.baseUrl!, apiKey: target.apiKeySealed ? this.secrets.open(target.apiKeySealed, { purpose: 'eval_target.api_key', id: target.id }) : null };
      return () => endpoint;
    }
    const replicas = await this.prisma.replica.findMany({ where: { poolId: target.poolId!, projectId: target.projectId, status: 'ready' }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    // Retried by the queue: replicas come back (the reconciler marks them ready again).
    if (replicas.length === 0) throw new DomainError('service_unavailable', `Target '${target.name}': no replica of its pool is ready`);
    const endpoints = replicas.map((r) => ({ ...shape, baseUrl: `${r.vllmUrl.replace(/\/+$/, '')}/v1`, apiKey: null }));
    let next = 0;
    return () => endpoints[next++ % endpoints.length];
  }
}
