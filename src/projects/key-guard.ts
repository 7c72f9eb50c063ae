import { mayManageKey, Principal } from '../common/auth/auth.decorators';
import { DomainError, notFound } from '../common/domain-error';
import { PrismaService } from '../db/prisma.service';

/**
 * Before a key creates, revokes or limits keys: it has no limits of its own (else 403). A key under a limit that
 * could lift it, or create a key without one, would not be under it. Read from Postgres, not the key cache: a limit
 * set a moment ago through another process holds here at once.
 */
export async function assertKeyManager(prisma: PrismaService, caller: Principal): Promise<void> {
  const me = await prisma.apiKey.findUnique({ where: { id: caller.keyId }, select: { rpmLimit: true, tpmLimit: true } });
  if (me && (me.rpmLimit !== null || me.tpmLimit !== null)) {
    throw new DomainError('forbidden', 'This API key has rate limits of its own, so it may not create, revoke or limit API keys: use a key without limits.');
  }
}

/**
 * Before a key revokes or caps key `id`: the caller may manage keys (assertKeyManager), and `id` is a live key of
 * the caller's project (else 404) that can do no more than the caller (else 403: see mayManageKey).
 */
export async function assertManageableKey(prisma: PrismaService, caller: Principal, id: string): Promise<void> {
  await assertKeyManager(prisma, caller);
  const key = await prisma.apiKey.findFirst({ where: { id, projectId: caller.projectId, revokedAt: null }, select: { scopes: true } });
  if (!key) throw notFound('API key', id, 'key_id');
  if (!mayManageKey(caller, key.scopes)) {
    throw new DomainError('forbidden', `API key ${id} holds scopes this key lacks (${key.scopes.join(', ')}): only a key that holds them may revoke or limit it.`, 'key_id');
  }
}
