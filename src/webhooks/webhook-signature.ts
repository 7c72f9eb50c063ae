import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks (https://www.standardwebhooks.com) signing: the secret is `whsec_` + base64 of random bytes,
 * the HMAC-SHA256 key is those bytes (base64-decoded, not the string), the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}` and the header is `v1,<base64 signature>`.
 */
const PREFIX = 'whsec_';

export function newWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

export function signWebhook(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
  return 'v1,' + createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64');
}

/** The three headers of one attempt; the timestamp is the attempt's, so each retry is signed afresh. */
export function webhookHeaders(secret: string, messageId: string, body: string, now = new Date()): Record<string, string> {
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secret, messageId, timestamp, body),
  };
}
