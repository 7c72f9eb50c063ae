import { S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Config } from '../../src/config/config';
import { start, Started } from '../../src/main';

/**
 * Boots the real application (api + worker) against the services scripts/test.mjs brought up, on a free port,
 * with its own bootstrap key and BullMQ prefix so suites do not see each other's work.
 */
export interface TestApp {
  url: string;
  apiKey: string;
  config: Config;
  started: Started;
  close(): Promise<void>;
}

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suites through 'npm test', which brings up the services`);
  return value;
}

export function testEnv(overrides: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...process.env,
    LORAPLANE_MODE: 'dev',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    PORT: '0',
    HOST: '127.0.0.1',
    QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`,
    S3_CREATE_BUCKET: 'true',
    ...overrides,
  };
}

/**
 * One bootstrap key per spec file: a new LORAPLANE_API_KEY revokes the previous one at start, so two apps of one
 * spec that run side by side must share it (spec files run one after the other).
 */
const BOOTSTRAP_KEY = `lp_${randomBytes(24).toString('hex')}`;

export async function startTestApp(overrides: Record<string, string> = {}): Promise<TestApp> {
  const apiKey = overrides.LORAPLANE_API_KEY ?? BOOTSTRAP_KEY;
  const config = Config.fromEnv(testEnv({ LORAPLANE_API_KEY: apiKey, ...overrides }));
  const started = await start(config);
  return { url: started.url!, apiKey, config, started, close: () => started.close() };
}

/**
 * A fresh tenant (project and key) through the admin API. The bootstrap key's default project is shared by every
 * suite of a test run; a suite that changes project-wide behaviour (an auto_deploy pool, limits) works in its own.
 */
export async function newProject(app: TestApp, name: string): Promise<{ id: string; key: string }> {
  const res = await fetch(`${app.url}/v1/admin/projects`, {
    method: 'POST',
    headers: { authorization: `Bearer ${app.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`creating project ${name}: ${res.status} ${await res.text()}`);
  const created = (await res.json()) as { id: string; api_key: { value: string } };
  return { id: created.id, key: created.api_key.value };
}

export function testS3(): S3Client {
  return new S3Client({
    endpoint: requireEnv('S3_ENDPOINT'),
    region: process.env.S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: requireEnv('S3_ACCESS_KEY_ID'), secretAccessKey: requireEnv('S3_SECRET_ACCESS_KEY') },
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
