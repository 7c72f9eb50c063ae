import { Injectable, Logger } from '@nestjs/common';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Config } from '../config/config';
import { DomainError } from './domain-error';

/**
 * Seals secrets that must be stored (an agent's token, a provider's API key, a webhook's signing secret) with
 * AES-256-GCM under SECRETS_KEY, so a database dump alone does not give them away. Sealed form:
 * `v2.<iv>.<tag>.<ciphertext>` (base64url), with the value's purpose and row id as GCM associated data: a sealed
 * value copied into another row (someone with write access to one table moving a token between tenants' rows) does
 * not open there.
 * `v1` values (before associated data) are re-sealed once, at start, by LegacySecretResealer, bound to the row they
 * are in at that moment; afterwards `open` refuses the v1 form, so an old value cannot be swapped in later either.
 * Dev mode without SECRETS_KEY uses a fixed key that is public (it is in this file): fine on a laptop, never in
 * production, where the config refuses to start without one.
 */
const DEV_KEY = Buffer.from('loraplane-dev-key-NOT-A-SECRET!!', 'utf8'); // 32 bytes

export type SecretPurpose = 'replica.agent_token' | 'eval_target.api_key' | 'webhook_endpoint.secret' | 'provider_model.api_key';

/** Where a sealed value lives: it opens only there. */
export interface SealContext {
  purpose: SecretPurpose;
  /** The id of the row that holds the value. */
  id: string;
}

@Injectable()
export class SecretBox {
  private readonly key: Buffer;

  constructor(config: Config) {
    if (config.env.SECRETS_KEY) {
      this.key = Buffer.from(config.env.SECRETS_KEY, 'hex');
    } else {
      this.key = DEV_KEY;
      new Logger(SecretBox.name).warn('SECRETS_KEY is not set: stored secrets are sealed with the public development key');
    }
  }

  seal(plain: string, ctx: SealContext): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(aad(ctx));
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v2', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  open(sealed: string, ctx: SealContext): string {
    return this.decrypt(sealed, 'v2', ctx);
  }

  /** Only for LegacySecretResealer: opens a v1 value (no associated data). */
  openLegacy(sealed: string): string {
    return this.decrypt(sealed, 'v1', null);
  }

  private decrypt(sealed: string, version: 'v1' | 'v2', ctx: SealContext | null): string {
    const [v, iv, tag, data] = sealed.split('.');
    if (v !== version || !iv || !tag || data === undefined) {
      const why = v === 'v1' ? 'sealed in the old format (it is re-sealed at start; a v1 value found later was put there by hand)' : 'not in the sealed format';
      throw new DomainError('internal', `a stored secret is ${why}`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      if (ctx) decipher.setAAD(aad(ctx));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch (err) {
      // Wrong SECRETS_KEY (rotated without re-sealing), a tampered row, or a value moved from another row: never
      // fall back to anything.
      throw new DomainError('internal', 'a stored secret cannot be opened: wrong SECRETS_KEY, or the value does not belong to this row', null, { cause: err });
    }
  }
}

const aad = (ctx: SealContext) => Buffer.from(`loraplane:${ctx.purpose}:${ctx.id}`, 'utf8');
