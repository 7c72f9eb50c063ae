import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 string; 24 characters carry ~142 bits. */
export function randomId(length = 24): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (let i = 0; i < bytes.length && out.length < length; i++) {
    // Rejection sampling keeps the distribution uniform (248 = 62 * 4).
    if (bytes[i] < 248) out += ALPHABET[bytes[i] % 62];
  }
  return out.length === length ? out : out + randomId(length - out.length);
}

/** Id prefixes follow OpenAI's where OpenAI has the object. */
export const newId = {
  project: () => `proj_${randomId()}`,
  apiKey: () => `key_${randomId()}`,
  file: () => `file-${randomId()}`,
  job: () => `ftjob-${randomId()}`,
  event: () => `ftevent-${randomId()}`,
  checkpoint: () => `ftckpt-${randomId()}`,
  gpuHost: () => `gpuhost-${randomId()}`,
  kubernetesCluster: () => `kcluster-${randomId()}`,
  allocation: () => `gpualloc-${randomId()}`,
  adapter: () => `adapter-${randomId()}`,
  adapterVersion: () => `adver-${randomId()}`,
  pool: () => `pool-${randomId()}`,
  replica: () => `replica-${randomId()}`,
  deployment: () => `deploy-${randomId()}`,
  alias: () => `alias-${randomId()}`,
  aliasEvent: () => `aliasev-${randomId()}`,
  // Standard Webhooks' examples name endpoints ep_ and messages msg_ (the webhook-id header).
  webhookEndpoint: () => `ep_${randomId()}`,
  webhookMessage: () => `msg_${randomId()}`,
  webhookDelivery: () => `whdel_${randomId()}`,
  webhookAttempt: () => `whatt_${randomId()}`,
  evalTarget: () => `evaltgt-${randomId()}`,
  evalSuite: () => `evalsuite-${randomId()}`,
  evalRun: () => `evalrun-${randomId()}`,
  evalComparison: () => `evalcmp-${randomId()}`,
  evalGate: () => `evalgate-${randomId()}`,
  providerModel: () => `provmodel-${randomId()}`,
  error: () => `err_${randomId(16)}`,
  request: () => `req_${randomId(16)}`,
};
