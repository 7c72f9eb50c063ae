import { createHash } from 'node:crypto';

/** Keys are 32 random base62 characters (~190 bits), so sha256 without a salt is a sound way to store them. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
