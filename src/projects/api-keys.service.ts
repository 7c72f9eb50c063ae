import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Principal } from '../common/auth/auth.decorators';
import { notFound } from '../common/domain-error';
import { newId, randomId } from '../common/ids';
import { PrismaService } from '../db/prisma.service';

export const KEY_PREFIX = 'lp_';

/** Keys are 32 random base62 characters (~190 bits), so sha256 without a salt is a sound way to store them. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

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
  constructor(private readonly prisma: PrismaService) {}

  async authenticate(key: string): Promise<Principal | null> {
    const row = await this.prisma.apiKey.findUnique({ where: { hash: hashKey(key) } });
    if (!row || row.revokedAt) return null;
    return { projectId: row.projectId, keyId: row.id, scopes: row.scopes };
  }

  async create(projectId: string, name: string, scopes: string[], key = generateKey()): Promise<CreatedKey> {
    const row = await this.prisma.apiKey.create({
      data: { id: newId.apiKey(), projectId, name, prefix: key.slice(0, 8), hash: hashKey(key), scopes },
    });
    return { id: row.id, name: row.name, key, prefix: row.prefix, scopes: row.scopes, createdAt: row.createdAt };
  }

  /** Registers a key chosen by the operator (LORAPLANE_API_KEY); a no-op when it is already there. */
  async ensure(projectId: string, name: string, scopes: string[], key: string): Promise<void> {
    await this.prisma.apiKey.upsert({
      where: { hash: hashKey(key) },
      update: { revokedAt: null },
      create: { id: newId.apiKey(), projectId, name, prefix: key.slice(0, 8), hash: hashKey(key), scopes },
    });
  }

  list(projectId: string) {
    return this.prisma.apiKey.findMany({
      where: { projectId, revokedAt: null },
      orderBy: { createdAt: 'asc' },
      select: { id: true, name: true, prefix: true, scopes: true, createdAt: true },
    });
  }

  async revoke(projectId: string, id: string): Promise<void> {
    const { count } = await this.prisma.apiKey.updateMany({
      where: { id, projectId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    if (count === 0) throw notFound('API key', id, 'key_id');
  }
}
