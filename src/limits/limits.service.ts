import { Injectable } from '@nestjs/common';
import { Principal } from '../common/auth/auth.decorators';
import { DomainError, notFound } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';
import { KeyCache } from '../projects/key-cache';
import { assertManageableKey } from '../projects/key-guard';
import { RateLimit } from './rate-limits';

/**
 * Where the gateway's limits are kept: on the API key (a project may cap its own keys, e.g. a CI key, but not one
 * that can do more than the caller: key-guard.ts) and on the project (an operator's cap over all its keys: admin
 * scope, so a tenant cannot lift its own). The gateway reads them with the keys it holds in memory; nothing here runs
 * per request. A change reloads this process's keys before it is answered, so a request sent after the answer meets
 * the new limits here (other processes within the change feed's delay), as a revoked key does.
 */
@Injectable()
export class LimitsService {
  constructor(private readonly prisma: PrismaService, private readonly keys: KeyCache) {}

  async keyLimits(projectId: string, keyId: string): Promise<RateLimit> {
    const key = await this.prisma.apiKey.findFirst({ where: { id: keyId, projectId, revokedAt: null }, select: { rpmLimit: true, tpmLimit: true } });
    if (!key) throw notFound('API key', keyId, 'key_id');
    return { rpm: key.rpmLimit, tpm: key.tpmLimit };
  }

  async setKeyLimits(caller: Principal, keyId: string, limits: RateLimit): Promise<RateLimit> {
    // A key under limits manages no keys (key-guard.ts): one that limited itself could never lift them again.
    if (keyId === caller.keyId) throw new DomainError('forbidden', 'An API key may not set its own limits (it could not lift them again): set them with another key of the project.', 'key_id');
    await assertManageableKey(this.prisma, caller, keyId);
    const { count } = await this.prisma.apiKey.updateMany({ where: { id: keyId, projectId: caller.projectId, revokedAt: null }, data: { rpmLimit: limits.rpm, tpmLimit: limits.tpm } });
    if (count === 0) throw notFound('API key', keyId, 'key_id');
    await this.keys.refresh();
    return limits;
  }

  async projectLimits(projectId: string): Promise<RateLimit> {
    const p = await this.prisma.project.findUnique({ where: { id: projectId }, select: { rpmLimit: true, tpmLimit: true } });
    if (!p) throw notFound('project', projectId, 'project_id');
    return { rpm: p.rpmLimit, tpm: p.tpmLimit };
  }

  async setProjectLimits(projectId: string, limits: RateLimit): Promise<RateLimit> {
    const { count } = await this.prisma.project.updateMany({ where: { id: projectId }, data: { rpmLimit: limits.rpm, tpmLimit: limits.tpm } });
    if (count === 0) throw notFound('project', projectId, 'project_id');
    await this.keys.refresh();
    return limits;
  }
}
