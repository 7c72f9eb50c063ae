import dns from 'node:dns';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { DomainError } from '../../src/common/domain-error';
import { classifyAddress } from '../../src/common/net/address-ranges';
import { parseTarget, RefusedTarget, refusedCause, TargetGuard } from '../../src/common/net/target-guard';
import { Config } from '../../src/config/config';
import { ChatCallError, ChatTargetClient } from '../../src/evals/chat-target-client';
import { WebhookSender } from '../../src/webhooks/webhook-sender';
import { OpenAIHttpClient } from '../../src/serving/openai-http.client';

const configWith = (allowed?: string) =>
  Config.fromEnv({
    DATABASE_URL: 'postgresql://x@127.0.0.1/x',
    REDIS_URL: 'redis://127.0.0.1',
    S3_BUCKET: 'bucket',
    LORAPLANE_MODE: 'dev',
    ...(allowed === undefined ? {} : { ALLOWED_PRIVATE_NETWORKS: allowed }),
  });

describe('address classes', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.10', 'private'],
    ['100.64.0.1', 'private'],
    ['198.18.0.1', 'private'],
    ['198.19.255.255', 'private'],
    ['192.0.0.8', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fec0::1', 'private'],
    ['64:ff9b:1::a00:1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['febf::1', 'link_local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['2001:db8::1', 'reserved'],
    // IPv6 shapes that carry an IPv4 address are judged by it.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'loopback'],
    ['::ffff:0:127.0.0.1', 'loopback'],
    ['64:ff9b::7f00:1', 'loopback'], // NAT64
    ['64:ff9b::169.254.169.254', 'metadata'],
    ['2002:7f00:1::', 'loopback'], // 6to4
    ['2002:a9fe:a9fe::1', 'metadata'],
    ['2002:c612:1::', 'private'], // 6to4 of 198.18.0.1
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // Teredo, client 127.0.0.1 inverted
  ])('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.0', '192.169.0.1', '100.128.0.1', '169.253.0.1', '198.20.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'])(
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

describe('TargetGuard: allow-list', () => {
  it('opens loopback and private ranges only inside ALLOWED_PRIVATE_NETWORKS, never link-local or metadata', () => {
    const guard = new TargetGuard(configWith('10.0.0.0/8,169.254.0.0/16,fd00::/8'));
    expect(guard.refusal('10.1.2.3')).toBeNull();
    expect(guard.refusal('::ffff:10.1.2.3')).toBeNull();
    expect(guard.refusal('64:ff9b::a01:203')).toBeNull();
    expect(guard.refusal('fd12::1')).toBeNull();
    expect(guard.refusal('8.8.8.8')).toBeNull();
    expect(guard.refusal('192.168.0.1')?.message).toMatch(/private address outside ALLOWED_PRIVATE_NETWORKS/);
    expect(guard.refusal('127.0.0.1')?.message).toMatch(/loopback/);
    expect(guard.refusal('169.254.169.254')?.message).toMatch(/cloud metadata/);
    expect(guard.refusal('169.254.1.1')?.message).toMatch(/link-local/);
    expect(guard.refusal('fd00:ec2::254')?.message).toMatch(/cloud metadata/);
    void guard.onModuleDestroy();
  });

  it('defaults to loopback in dev mode and to nothing in production', () => {
    expect(configWith().allowedPrivateNetworks.map((c) => c.text)).toEqual(['127.0.0.0/8', '::1/128']);
    expect(Config.fromEnv({ DATABASE_URL: 'postgresql://x@h/x', REDIS_URL: 'redis://h', S3_BUCKET: 'bucket', SECRETS_KEY: 'ab'.repeat(32) }).allowedPrivateNetworks).toEqual([]);
    expect(configWith('none').allowedPrivateNetworks).toEqual([]);
  });

  it('refuses at create with a 400 naming the field, without the address', async () => {
    const guard = new TargetGuard(configWith());
    for (const url of ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'http://[::ffff:169.254.169.254]/', 'http://10.0.0.5:5432/', 'http://[64:ff9b::a9fe:a9fe]/', 'ftp://example.com/']) {
      const err = await guard.assertAllowed(url, 'base_url').then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(DomainError);
      expect([url, (err as DomainError).code, (err as DomainError).param]).toEqual([url, 'invalid_request', 'base_url']);
      expect((err as DomainError).message).not.toMatch(/169\.254|10\.0\.0\.5|a9fe/);
    }
    // A public literal, an allowed loopback and a name that does not resolve (judged again at each connect) pass.
    await expect(guard.assertAllowed('https://8.8.8.8/v1', 'base_url')).resolves.toBeUndefined();
    await expect(guard.assertAllowed('http://127.0.0.1:9/v1', 'base_url')).resolves.toBeUndefined();
    await expect(guard.assertAllowed('https://does-not-exist.invalid/v1', 'base_url')).resolves.toBeUndefined();
    await guard.onModuleDestroy();
  });
});

describe('TargetGuard: on the address connected to', () => {
  let server: http.Server;
  let port: number;
  let hits = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ choices: [{ message: { content: 'internal secret answer' } }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));
  afterEach(() => jest.restoreAllMocks());

  /** `rebind.example` resolves to a public address first, then (after the create-time check) to loopback. */
  function rebindingDns(): void {
    const real = dns.lookup;
    let calls = 0;
    jest.spyOn(dns, 'lookup').mockImplementation(((host: string, options: dns.LookupAllOptions, callback: (err: null, a: dns.LookupAddress[]) => void) => {
      if (host !== 'rebind.example') return (real as (...a: unknown[]) => void)(host, options, callback);
      calls++;
      callback(null, [{ address: calls === 1 ? '93.184.216.34' : '127.0.0.1', family: 4 }]);
    }) as unknown as typeof dns.lookup);
  }

  it('refuses a hostname that resolves to a private address at call time (fetch clients)', async () => {
    rebindingDns();
    const guard = new TargetGuard(configWith('none'));
    const client = new ChatTargetClient(configWith('none'), new OpenAIHttpClient(configWith('none'), guard));
    await expect(guard.assertAllowed(`http://rebind.example:${port}/v1`, 'base_url')).resolves.toBeUndefined();
    const before = hits;
    const err = await client
      .complete({ baseUrl: `http://rebind.example:${port}/v1`, apiKey: null, model: 'm', reasoning: false, maxTokens: 4, temperature: 0, stream: false }, [{ role: 'user', content: 'hi' }])
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ChatCallError);
    expect((err as ChatCallError).retryable).toBe(false);
    expect((err as ChatCallError).message).toMatch(/loopback address/);
    expect((err as ChatCallError).message).not.toContain('internal secret answer');
    // An IP literal is judged too (net.connect never calls lookup for one), as is localhost.
    for (const url of [`http://127.0.0.1:${port}/`, `http://localhost:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`]) {
      const e = await fetch(url, { dispatcher: guard.dispatcher }).then(() => null, (x: unknown) => x);
      expect([url, refusedCause(e)?.message]).toEqual([url, expect.stringMatching(/loopback address/)]);
    }
    expect(hits).toBe(before);
    await guard.onModuleDestroy();
  });

  it('lets through what the allow-list opens', async () => {
    const guard = new TargetGuard(configWith('127.0.0.0/8'));
    const res = await fetch(`http://localhost:${port}/`, { dispatcher: guard.dispatcher });
    expect(res.status).toBe(200);
    await res.text();
    await guard.onModuleDestroy();
  });

  it('refuses at connect for node:http clients (webhooks), literal or resolved', async () => {
    rebindingDns();
    const guard = new TargetGuard(configWith('none'));
    const sender = new WebhookSender(guard);
    const before = hits;
    for (const url of [`http://rebind.example:${port}/hook`, `http://127.0.0.1:${port}/hook`]) {
      await guard.assertAllowed(url, 'url').catch(() => undefined);
      const result = await sender.post(url, {}, '{}', 2000);
      expect([url, result.status, result.error]).toEqual([url, null, expect.stringMatching(/^refused: .*loopback address/)]);
    }
    expect(hits).toBe(before);
    await guard.onModuleDestroy();
  });
});
