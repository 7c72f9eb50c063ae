import { createHmac } from 'node:crypto';
import { scrubSecrets } from '../../src/common/logger';
import { retryDelayMs } from '../../src/webhooks/webhook-deliverer';
import { webhookBody } from '../../src/webhooks/webhook-events';
import { newWebhookSecret, signWebhook, webhookHeaders } from '../../src/webhooks/webhook-signature';

describe('Standard Webhooks signatures', () => {
  it("matches the specification's reference test vector", () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(signWebhook(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('keys the HMAC with the base64-decoded secret bytes, not the string', () => {
    const secret = newWebhookSecret();
    const bytes = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', bytes).update('msg_1.100.{}').digest('base64');
    expect(signWebhook(secret, 'msg_1', 100, '{}')).toBe(`v1,${expected}`);
    expect(signWebhook(secret, 'msg_1', 100, '{}')).not.toBe(`v1,${createHmac('sha256', secret).update('msg_1.100.{}').digest('base64')}`);
  });

  it('makes whsec_ secrets of 32 random bytes', () => {
    const a = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(a.slice(6), 'base64')).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(a);
  });

  it('puts the id, the attempt time in seconds and the signature in the three headers', () => {
    const headers = webhookHeaders('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', '{"test": 2432232314}', new Date(1614265330_500));
    expect(headers).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('builds the body as {type, timestamp, data} with the event time, identical on every retry', () => {
    const m = { type: 'adapter.deployed', createdAt: new Date('2026-12-02T01:02:03.004Z'), payload: { pool: 'p', adapter: 'a', version: 2 } };
    expect(webhookBody(m)).toBe('{"type":"adapter.deployed","timestamp":"2026-12-02T01:02:03.004Z","data":{"pool":"p","adapter":"a","version":2}}');
    expect(webhookBody(m)).toBe(webhookBody({ ...m }));
  });

  it('scrubs whsec_ secrets from free text in logs', () => {
    const secret = newWebhookSecret();
    expect(scrubSecrets(`secret is ${secret}.`)).toBe('secret is whsec_[redacted].');
  });
});

describe('webhook retry schedule', () => {
  it('doubles from the base delay after each failed attempt', () => {
    expect([1, 2, 3, 4, 7].map((n) => retryDelayMs(5000, n))).toEqual([5000, 10_000, 20_000, 40_000, 320_000]);
  });
});
