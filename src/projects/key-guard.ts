import { mayManageKey, Principal } from '../common/auth/auth.decorators';
import { DomainError, notFound } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';

/**
 * Before a key revokes or caps key `id`: it must be a live key of the caller's project (else 404) that can do no more
 * than the caller (else 403: see mayManageKey).
 */
export async function assertManageableKey(prisma: PrismaService, caller: Principal, id: string): Promise<void> {
  const key = await prisma.apiKey.findFirst({ where: { id, projectId: caller.projectId, revokedAt: null }, select: { scopes: true } });
  if (!key) throw notFound('API key', id, 'key_id');
  if (!mayManageKey(caller, key.scopes)) {
    throw new DomainError('forbidden', `API key ${id} holds scopes this key lacks (${key.scopes.join(', ')}): only a key that holds them may revoke or limit it.`, 'key_id');
  }
}
