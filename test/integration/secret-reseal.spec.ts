import { createCipheriv, randomBytes } from 'node:crypto';
import { LegacySecretResealer } from '../../src/common/legacy-secret-resealer';
import { SecretBox } from '../../src/common/secret-box';
import { PrismaService } from '../../src/db/prisma.service';
import { startTestApp, TestApp } from '../support/app';

/** Secrets sealed before associated data are re-sealed once, bound to their row; then they cannot move rows. */
describe('sealed secrets: associated data and the one-time re-seal (integration)', () => {
  let app: TestApp;
  let prisma: PrismaService;
  let box: SecretBox;
  let projectId: string;

  /** What the previous SecretBox wrote: AES-256-GCM without associated data. */
  function sealV1(plain: string): string {
    const key = app.config.env.SECRETS_KEY ? Buffer.from(app.config.env.SECRETS_KEY, 'hex') : Buffer.from('loraplane-dev-key-NOT-A-SECRET!!', 'utf8');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  beforeAll(async () => {
    app = await startTestApp({ LORAPLANE_ROLE: 'api' });
    prisma = app.started.app.get(PrismaService);
    box = app.started.app.get(SecretBox);
    projectId = (await (await fetch(`${app.url}/v1/project`, { headers: { authorization: `Bearer ${app.apiKey}` } })).json() as { id: string }).id;
  });
  afterAll(async () => {
    // Leave the shared default project as found: other suites list its endpoints.
    await prisma?.webhookEndpoint.deleteMany({ where: { id: { startsWith: 'ep_reseal_' } } });
    await app?.close();
  });

  it('re-seals v1 values at start with their row id, after which a value copied to another row does not open', async () => {
    const mk = (id: string, secretSealed: string) => prisma.webhookEndpoint.create({ data: { id, projectId, url: 'https://8.8.8.8/hook', eventTypes: [], secretSealed } });
    const a = await mk(`ep_reseal_a_${Date.now()}`, sealV1('whsec_aaaa'));
    const b = await mk(`ep_reseal_b_${Date.now()}`, sealV1('whsec_bbbb'));
    expect(() => box.open(a.secretSealed, { purpose: 'webhook_endpoint.secret', id: a.id })).toThrow(/old format/);

    await app.started.app.get(LegacySecretResealer).onApplicationBootstrap();
    const [a2, b2] = await Promise.all([a, b].map((r) => prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: r.id } })));
    expect(a2.secretSealed).toMatch(/^v2\./);
    expect(box.open(a2.secretSealed, { purpose: 'webhook_endpoint.secret', id: a.id })).toBe('whsec_aaaa');
    expect(box.open(b2.secretSealed, { purpose: 'webhook_endpoint.secret', id: b.id })).toBe('whsec_bbbb');
    // Swapped into b's row, a's secret is refused rather than used to sign b's deliveries.
    expect(() => box.open(a2.secretSealed, { purpose: 'webhook_endpoint.secret', id: b.id })).toThrow(/does not belong to this row/);
    // A second start finds nothing left to re-seal and changes nothing.
    await app.started.app.get(LegacySecretResealer).onApplicationBootstrap();
    expect((await prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: a.id } })).secretSealed).toBe(a2.secretSealed);
  });
});
