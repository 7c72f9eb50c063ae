import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Random bytes are drawn 4 KiB at a time: one id per request (the request id) made a call into OpenSSL each.
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

function randomByte(): number {
  if (offset >= pool.length) {
    pool = randomBytes(POOL_SIZE);
    offset = 0;
  }
  return pool[offset++];
}

/** Random base62 string; 24 characters carry ~142 bits. */
export function randomId(length = 24): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    // Rejection sampling keeps the distribution uniform (248 = 62 * 4).
    if (byte < 248) out += ALPHABET[byte % 62];
  }
  return out;
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
