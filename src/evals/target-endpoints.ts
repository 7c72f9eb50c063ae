import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { SecretBox } from '../common/secret-box';
import { PrismaService } from '../db/prisma.service';
import { EvalTarget } from '../generated/prisma/client';
import { ChatEndpoint } from './chat-target-client';
import { ReplicaRouter, replicasServing } from '../serving/replica-router';
import { servedName } from '../serving/served-name';

/** The name a self-hosted target is called by on its pool's replicas. */
export function targetModelName(t: Pick<EvalTarget, 'kind' | 'model' | 'adapterVersion'>): string {
  return t.kind === 'adapter' && t.adapterVersion !== null ? servedName(t.model, t.adapterVersion) : t.model;
}

/**
 * Where each call of a target goes. An API target has one endpoint (its key opened from the sealed column only
 * here, in the worker, and only for the call); a pool target goes through the replica router the gateway uses: each
 * call to the least busy ready replica that reported the model loaded.
 */
@Injectable()
export class TargetEndpoints {
  constructor(private readonly prisma: PrismaService, private readonly secrets: SecretBox, private readonly router: ReplicaRouter) {}

  async picker(target: EvalTarget): Promise<() => ChatEndpoint> {
    const shape = { model: targetModelName(target), reasoning: target.reasoning, maxTokens: target.maxTokens, temperature: target.temperature, stream: target.stream };
    if (target.kind === 'api') {
      const endpoint: ChatEndpoint = { ...shape, baseUrl: target.baseUrl!, apiKey: target.apiKeySealed ? this.secrets.open(target.apiKeySealed, { purpose: 'eval_target.api_key', id: target.id }) : null };
      return () => endpoint;
    }
    const pool = await this.prisma.servingPool.findFirst({
      where: { id: target.poolId!, projectId: target.projectId },
      select: { servedModelName: true, replicas: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { id: true, name: true, vllmUrl: true, status: true, observed: true } } },
    });
    const candidates = pool ? replicasServing(target.poolId!, pool.replicas, shape.model, pool.servedModelName) : [];
    // Retried by the queue: replicas come back (the reconciler marks them ready again).
    if (candidates.length === 0) throw new DomainError('service_unavailable', `Target '${target.name}': no ready replica of its pool has ${shape.model} loaded`);
    return () => {
      const replica = this.router.choose(candidates)!;
      return { ...shape, baseUrl: `${replica.url}/v1`, apiKey: null, acquire: () => this.router.acquire(replica.replicaId) };
    };
  }
}
