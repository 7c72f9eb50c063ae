import { Injectable } from '@nestjs/common';
import { Principal, ProjectKeyScope } from '../common/auth/auth.decorators';
import { notFound } from '../common/domain-error';
import { newId, randomId } from '../common/ids';
import { PrismaService } from '../db/prisma.service';
import { KeyCache } from './key-cache';
import { assertKeyManager, assertManageableKey } from './key-guard';
import { hashKey } from './key-hash';

export const KEY_PREFIX = 'lp_';
export const BOOTSTRAP_KEY_NAME = 'bootstrap (LORAPLANE_API_KEY)';

// In its own file: the key cache needs it too, and this service needs the cache (no import cycle).
export { hashKey };

export function generateKey(): string {
  return `${KEY_PREFIX}${randomId(32)}`;
}

export interface CreatedKey {
  id: string;
  name: string;
  /** Shown once: only its hash is stored. */
  key: string;
  prefix: string;
  scopes: string[];
  createdAt: Date;
}

@Injectable()
export class ApiKeysService {
  constructor(private readonly prisma: PrismaService, private readonly cache: KeyCache) {}

  async authenticate(key: string): Promise<Principal | null> {
    const row = await this.prisma.apiKey.findUnique({ where: { hash: hashKey(key) } });
    if (!row || row.revokedAt) return null;
    return { projectId: row.projectId, keyId: row.id, scopes: row.scopes };
  }

  /**
   * A key made by a key (POST /v1/api_keys): one with limits of its own may not (assertKeyManager); a restricted key
   * may not reach this route at all (the guard).
   */
  async createFor(caller: Principal, name: string, scopes: ProjectKeyScope[] = ['project']): Promise<CreatedKey> {
    await assertKeyManager(this.prisma, caller);
    return this.create(caller.projectId, name, scopes);
  }

  async create(projectId: string, name: string, scopes: string[], key = generateKey()): Promise<CreatedKey> {
    const row = await this.prisma.apiKey.create({
      data: { id: newId.apiKey(), projectId, name, prefix: key.slice(0, 8), hash: hashKey(key), scopes },
    });
    return { id: row.id, name: row.name, key, prefix: row.prefix, scopes: row.scopes, createdAt: row.createdAt };
  }

  /**
   * Registers the operator's key (LORAPLANE_API_KEY) and revokes every earlier bootstrap key, in one transaction.
   * A revoked key stays revoked: restarting with it does not bring it back (rotate by setting a new value).
   */
  async ensureBootstrap(projectId: string, key: string): Promise<{ revokedBefore: boolean; rotatedOut: number }> {
    const hash = hashKey(key);
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.apiKey.findUnique({ where: { hash } });
      if (!existing) {
        await tx.apiKey.create({
          data: { id: newId.apiKey(), projectId, name: BOOTSTRAP_KEY_NAME, prefix: key.slice(0, 8), hash, scopes: ['*'], bootstrap: true },
        });
      }
      const { count } = await tx.apiKey.updateMany({
        where: { bootstrap: true, revokedAt: null, hash: { not: hash } },
        data: { revokedAt: new Date() },
      });
      return { revokedBefore: existing?.revokedAt != null, rotatedOut: count };
    });
  }

  list(projectId: string) {
    return this.prisma.apiKey.findMany({
      where: { projectId, revokedAt: null },
      orderBy: { createdAt: 'asc' },
      select: { id: true, name: true, prefix: true, scopes: true, createdAt: true },
    });
  }

  /** An admin's revoke: any project's key, by id. */
  async revokeAny(id: string): Promise<void> {
    const { count } = await this.prisma.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
    if (count === 0) throw notFound('API key', id, 'key_id');
    // This process stops honouring it now; others within the change feed's delay.
    await this.cache.refresh();
  }

  /** A project key's revoke: a key of its own project that can do no more than it can (assertManageableKey). */
  async revoke(caller: Principal, id: string): Promise<void> {
    await assertManageableKey(this.prisma, caller, id);
    const { count } = await this.prisma.apiKey.updateMany({
      where: { id, projectId: caller.projectId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    if (count === 0) throw notFound('API key', id, 'key_id');
    await this.cache.refresh();
  }
}
