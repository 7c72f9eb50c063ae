import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Principal } from '../common/auth/auth.decorators';
import { Config } from '../config/config';
import { ChangeFeed } from '../db/change-feed';
import { LiveSnapshot } from '../db/live-snapshot';
import { PrismaService } from '../db/prisma.service';
import { hashKey } from './key-hash';

// The key's and its project's limits ride along, so the gateway checks them without a query (a change to either
// table reloads the map).
const KEY_FIELDS = {
  id: true, projectId: true, hash: true, scopes: true, revokedAt: true, rpmLimit: true, tpmLimit: true,
  project: { select: { rpmLimit: true, tpmLimit: true } },
} as const;
type KeyRow = { id: string; projectId: string; scopes: string[]; rpmLimit: number | null; tpmLimit: number | null; project: { rpmLimit: number | null; tpmLimit: number | null } };
const principalOf = (r: KeyRow): Principal => ({
  projectId: r.projectId,
  keyId: r.id,
  scopes: r.scopes,
  limits: { key: { rpm: r.rpmLimit, tpm: r.tpmLimit }, project: { rpm: r.project.rpmLimit, tpm: r.project.tpmLimit } },
});

/**
 * Every live API key in memory (sha256 -> principal), so authenticating a request costs a hash and a map lookup,
 * not a query. A revoked or deleted key disappears within the change feed's delay (milliseconds; the periodic
 * refresh bounds it when notifications are lost). A key not in the map is looked up once in Postgres: it may have
 * been created a moment ago in another process.
 */
@Injectable()
export class KeyCache implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly snapshot: LiveSnapshot<Map<string, Principal>>;

  constructor(private readonly prisma: PrismaService, private readonly feed: ChangeFeed, private readonly config: Config) {
    this.snapshot = new LiveSnapshot('KeyCache', new Map(), () => this.loadAll(), new Set(['ApiKey', 'Project']));
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.runsApi || this.config.runsGateway) await this.snapshot.start(this.feed, this.config.env.GATEWAY_REFRESH_MS);
  }

  onModuleDestroy(): void {
    this.snapshot.stop();
  }

  /** The key's principal, or null for an unknown or revoked key. */
  async authenticate(key: string): Promise<Principal | null> {
    const hash = hashKey(key);
    const map = this.snapshot.value;
    const hit = map.get(hash);
    if (hit) return hit;
    const row = await this.prisma.apiKey.findUnique({ where: { hash }, select: KEY_FIELDS });
    if (!row || row.revokedAt) return null;
    const principal = principalOf(row);
    // Only into the copy the lookup started from: a newer copy knows better (the key may be revoked already).
    if (this.snapshot.value === map) map.set(hash, principal);
    return principal;
  }

  /** Synchronous lookup for the gateway's hot path: the map only (a miss goes through `authenticate`). */
  cached(key: string): Principal | undefined {
    return this.snapshot.value.get(hashKey(key));
  }

  /** Reload now (after a local change, so this process does not wait for its own notification). */
  refresh(): Promise<void> {
    return this.snapshot.refresh();
  }

  private async loadAll(): Promise<Map<string, Principal>> {
    const rows = await this.prisma.apiKey.findMany({ where: { revokedAt: null }, select: KEY_FIELDS });
    return new Map(rows.map((r) => [r.hash, principalOf(r)]));
  }
}
