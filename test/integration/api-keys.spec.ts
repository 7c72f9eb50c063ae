// Bootstrap-key rotation revokes keys at start, so this suite runs on its own database: the other suites' apps
// (one bootstrap key per spec file) are not touched.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { randomBytes } from 'node:crypto';
import { startTestApp, TestApp } from '../support/app';

const ROOT = path.resolve(__dirname, '../..');

function scratchUrl(): string {
  const url = new URL(process.env.DATABASE_URL ?? '');
  url.pathname = `${url.pathname}_keys_${process.pid}`;
  return url.toString();
}

async function admin(sql: string): Promise<void> {
  const url = new URL(process.env.DATABASE_URL ?? '');
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const newKey = () => `lp_${randomBytes(24).toString('hex')}`;

describe('API keys: bootstrap rotation and admin revoke', () => {
  jest.setTimeout(90_000);
  const db = scratchUrl();
  const dbName = new URL(db).pathname.slice(1);
  let app: TestApp | null = null;
  const boot = async (key: string) => {
    await app?.close();
    app = await startTestApp({ DATABASE_URL: db, LORAPLANE_API_KEY: key, LORAPLANE_ROLE: 'api' });
    return app;
  };
  const status = async (key: string, method = 'GET', p = '/v1/project') =>
    (await fetch(`${app!.url}${p}`, { method, headers: { authorization: `Bearer ${key}` } })).status;

  beforeAll(async () => {
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, [path.join(ROOT, 'scripts/migrate.mjs'), 'deploy'], { cwd: ROOT, env: { ...process.env, DATABASE_URL: db } }, (err, _out, stderr) =>
        err ? reject(new Error(stderr)) : resolve(),
      ),
    );
  });
  afterAll(async () => {
    await app?.close();
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  });

  it('a revoked bootstrap key stays revoked across restarts', async () => {
    const k1 = newKey();
    await boot(k1);
    expect(await status(k1)).toBe(200);
    const keys = (await (await fetch(`${app!.url}/v1/api_keys`, { headers: { authorization: `Bearer ${k1}` } })).json()) as { data: { id: string; name: string }[] };
    const id = keys.data.find((k) => k.name.startsWith('bootstrap'))!.id;
    expect(await status(k1, 'DELETE', `/v1/api_keys/${id}`)).toBe(200);
    expect(await status(k1)).toBe(401);
    await boot(k1);
    expect(await status(k1)).toBe(401);
  });

  it('a new LORAPLANE_API_KEY revokes the previous bootstrap key', async () => {
    const k2 = newKey();
    const k3 = newKey();
    await boot(k2);
    expect(await status(k2)).toBe(200);
    await boot(k3);
    expect(await status(k3)).toBe(200);
    expect(await status(k2)).toBe(401);
    // And going back to the old value does not revive it.
    await boot(k2);
    expect(await status(k2)).toBe(401);
  });

  it("an admin key revokes any project's key; a project key cannot", async () => {
    const root = newKey();
    await boot(root);
    const mk = async (name: string) => {
      const res = await fetch(`${app!.url}/v1/admin/projects`, { method: 'POST', headers: { authorization: `Bearer ${root}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      return ((await res.json()) as { api_key: { id: string; value: string } }).api_key;
    };
    const a = await mk('tenant a');
    const b = await mk('tenant b');
    expect(await status(b.value, 'DELETE', `/v1/admin/api_keys/${a.id}`)).toBe(403);
    expect(await status(b.value, 'DELETE', `/v1/api_keys/${a.id}`)).toBe(404); // another project's key: not found
    expect(await status(a.value)).toBe(200);
    expect(await status(root, 'DELETE', `/v1/admin/api_keys/${a.id}`)).toBe(200);
    expect(await status(a.value)).toBe(401);
    expect(await status(root, 'DELETE', `/v1/admin/api_keys/${a.id}`)).toBe(404);
    expect(await status(b.value)).toBe(200);
  });
});
