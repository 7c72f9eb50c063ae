import { Injectable, Logger } from '@nestjs/common';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Config } from '../config/config';
import { DomainError } from './domain-error';

/**
 * Seals secrets that must be stored (an agent's token, a provider's API key) with AES-256-GCM under SECRETS_KEY, so
 * a database dump alone does not give them away. Sealed form: `v1.<iv>.<tag>.<ciphertext>` (base64url).
 * Dev mode without SECRETS_KEY uses a fixed key that is public (it is in this file): fine on a laptop, never in
 * production, where the config refuses to start without one.
 */
const DEV_KEY = Buffer.from('loraplane-dev-key-NOT-A-SECRET!!', 'utf8'); // 32 bytes

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

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  open(sealed: string): string {
    const [v, iv, tag, data] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || data === undefined) throw new DomainError('internal', 'a stored secret is not in the sealed format');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch (err) {
      // Wrong SECRETS_KEY (rotated without re-sealing) or a tampered row: never fall back to anything.
      throw new DomainError('internal', 'a stored secret cannot be opened with the configured SECRETS_KEY', null, { cause: err });
    }
  }
}
