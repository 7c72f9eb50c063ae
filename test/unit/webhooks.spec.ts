import { createHmac } from 'node:crypto';
import { scrubSecrets } from '../../src/common/logger';
import { retryDelayMs } from '../../src/webhooks/webhook-deliverer';
import { webhookBody } from '../../src/webhooks/webhook-events';
import { newWebhookSecret, signWebhook, webhookHeaders } from '../../src/webhooks/webhook-signature';
import { classifyAddress, parseTarget, RefusedTarget } from '../../src/webhooks/webhook-target';

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

describe('webhook target address classifier', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.10', 'private'],
    ['100.64.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['169.254.169.254', 'link_local'],
    ['fe80::1', 'link_local'],
    ['febf::1', 'link_local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    // IPv4-mapped IPv6, dotted and hex: the IPv4 ranges apply.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:192.168.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link_local'],
    ['::ffff:0.0.0.0', 'unspecified'],
  ])('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.0', '192.169.0.1', '11.0.0.1', '100.128.0.1', '169.253.0.1', '2001:4860:4860::8888', 'fec0::1', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => {
      expect(classifyAddress(address)).toBeNull();
    },
  );

  it('accepts only http and https URLs', () => {
    expect(parseTarget('https://example.com/hook').host).toBe('example.com');
    expect(parseTarget('http://[::1]:8080/x').host).toBe('::1');
    for (const url of ['ftp://example.com/x', 'file:///etc/passwd', 'gopher://x', 'not a url']) expect(() => parseTarget(url)).toThrow(RefusedTarget);
  });
});

describe('webhook retry schedule', () => {
  it('doubles from the base delay after each failed attempt', () => {
    expect([1, 2, 3, 4, 7].map((n) => retryDelayMs(5000, n))).toEqual([5000, 10_000, 20_000, 40_000, 320_000]);
  });
});
