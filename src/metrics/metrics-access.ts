import { createHash, timingSafeEqual } from 'node:crypto';

/** Whether an Authorization header carries the metrics token (compared in constant time, over digests). */
export function metricsTokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]), digest(token));
}
