// The services loraplane needs on a development or CI machine (Debian 12, as root): PostgreSQL, Redis, a Docker
// engine and an S3-protocol server (one module each under stack/). Each is reused when it already answers (a probe
// of a few ms), started when it is installed but down, and installed from Debian's packages when missing. Nothing is
// stopped here, except the test S3 server through the returned stop(); the services outlive the script, as a
// developer's machine expects.
import { deployMigrations, dropDatabase } from './migrations.mjs';
import { DEFAULT_DOCKER_SOCKET, ensureDocker, ensureTinyImage, sourceTag } from './stack/docker.mjs';
import { ensurePostgresServer } from './stack/postgres.mjs';
import { ensureRedis, redisFlushDb } from './stack/redis.mjs';
import { ensureS3 } from './stack/s3.mjs';
import { CHROMIUM, ensureChromium, ensureKubectl } from './stack/tools.mjs';

const MODES = {
  dev: { database: 'loraplane', redisDb: 0, queuePrefix: 'loraplane', s3Port: 9000, bucket: 'loraplane' },
  test: { database: 'loraplane_test', redisDb: 1, queuePrefix: 'loraplane_test', s3Port: 9100, bucket: 'loraplane-test' },
};

/**
 * LORAPLANE_TEST_SLOT=N (1..14) gives a test run its own database, Redis db, queue prefix and S3 port, so two runs
 * on one machine (two checkouts, or parallel work) do not recreate each other's state mid-run.
 */
function testSlot(settings, mode, slot) {
  if (!settings || mode !== 'test' || slot === undefined || slot === '' || slot === '0') return settings;
  const n = Number(slot);
  if (!Number.isInteger(n) || n < 1 || n > 14) throw new Error(`LORAPLANE_TEST_SLOT must be 1..14, got '${slot}'`);
  return { ...settings, database: `${settings.database}_${n}`, redisDb: 1 + n, queuePrefix: `${settings.queuePrefix}_${n}`, s3Port: settings.s3Port + n };
}

/** What one run brings up: its mode, settings, URLs and the caller's environment (see ensureStack). */
async function plan(mode, env) {
  const settings = testSlot(MODES[mode], mode, env.LORAPLANE_TEST_SLOT);
  if (!settings) throw new Error(`unknown stack mode ${mode}`);
  const own = (name) => (mode === 'dev' ? env[name] || undefined : undefined);
  return {
    mode, env, settings,
    // Tests start from empty state: their database and Redis db are recreated on every run, because the test S3
    // server keeps its objects in a temporary folder, and rows left from an earlier run would point at objects that
    // are gone (datasets are deduplicated by content).
    fresh: mode === 'test',
    databaseUrl: own('DATABASE_URL') ?? `postgresql://postgres@127.0.0.1:5432/${settings.database}`,
    redisUrl: own('REDIS_URL') ?? `redis://127.0.0.1:6379/${settings.redisDb}`,
    dockerSocket: env.DOCKER_SOCKET || DEFAULT_DOCKER_SOCKET,
    // Test runs tag the trainer image by its sources: checkouts sharing one Docker engine (worktrees, benches) never
    // rebuild each other's image under a shared tag while a run uses it.
    tinyImage: env.TINY_LORA_IMAGE || (mode === 'test' ? await sourceTag() : 'loraplane/tiny-lora:dev'),
  };
}

/** One named step per service, run in parallel; `s3` is filled in by its step (its stop() ends the test server). */
function steps(p, log, timings, s3) {
  const { settings, fresh } = p;
  return {
    postgres: async () => {
      const how = await ensurePostgresServer(p.databaseUrl, log);
      if (fresh) await dropDatabase(p.databaseUrl);
      const out = await deployMigrations(p.databaseUrl);
      const db = new URL(p.databaseUrl).pathname.slice(1);
      const migrated = out.applied.length ? `applied ${out.applied.join(', ')} (${out.via})` : 'migrations up to date';
      return `${how}; database ${db}${fresh ? ' recreated' : out.createdDatabase ? ' created' : ''}, ${migrated}`;
    },
    redis: async () => {
      const how = await ensureRedis(p.redisUrl, log);
      if (!fresh) return how;
      const url = new URL(p.redisUrl);
      await redisFlushDb(url.hostname, Number(url.port || 6379), settings.redisDb);
      return `${how}; db ${settings.redisDb} flushed`;
    },
    docker: async () => {
      const { docker, how } = await ensureDocker(p.dockerSocket, log);
      const t0 = Date.now();
      const image = await ensureTinyImage(docker, p.tinyImage, log);
      timings['tiny-image'] = Date.now() - t0;
      return `${how}; tiny trainer image ${image} in ${timings['tiny-image']} ms`;
    },
    // The dashboard's end-to-end spec drives Debian's Chromium (test mode only; dev machines bring their browser).
    ...(p.mode === 'test' ? { chromium: () => ensureChromium(log) } : {}),
    s3: async () => {
      if (p.env.S3_ENDPOINT) return `using S3_ENDPOINT ${p.env.S3_ENDPOINT}`;
      Object.assign(s3, await ensureS3(p.mode, settings, log));
      return `s3rver ${s3.how} at ${s3.endpoint}, bucket ${settings.bucket}`;
    },
    // The deploy manifests are rendered with Debian's kubectl (kustomize built in) by the test suite.
    ...(p.mode === 'test' ? { kubectl: () => ensureKubectl(log) } : {}),
  };
}

/** The environment the app needs to use what was brought up. */
function appEnv(p, s3) {
  return {
    LORAPLANE_MODE: 'dev',
    DATABASE_URL: p.databaseUrl,
    REDIS_URL: p.redisUrl,
    QUEUE_PREFIX: p.settings.queuePrefix,
    ...(p.env.S3_ENDPOINT
      ? { S3_ENDPOINT: p.env.S3_ENDPOINT }
      : { S3_ENDPOINT: s3.endpoint, S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', S3_REGION: 'us-east-1' }),
    S3_BUCKET: p.settings.bucket,
    S3_FORCE_PATH_STYLE: 'true',
    S3_CREATE_BUCKET: 'true',
    DOCKER_SOCKET: p.dockerSocket,
    // Trainer containers fetch and upload through presigned URLs to s3rver on 127.0.0.1: only host networking
    // lets them reach the host's loopback.
    TRAINING_NETWORK: 'host',
    TINY_LORA_IMAGE: p.tinyImage,
    ...(p.mode === 'test' ? { CHROMIUM_PATH: CHROMIUM } : {}),
  };
}

/**
 * Brings up (or reuses) PostgreSQL with a migrated database, Redis, a Docker engine (+ the tiny trainer image) and an
 * S3 server for `mode`, and returns the environment the app needs. In dev mode DATABASE_URL, REDIS_URL, S3_ENDPOINT
 * and DOCKER_SOCKET from `env` are honoured; in test mode only S3_ENDPOINT and DOCKER_SOCKET are, so that tests never
 * run against a developer's own database or queues.
 * Returns { env, timings, stop } where stop() ends what this call started for tests (the test S3 server).
 */
export async function ensureStack({ mode = 'dev', log = (line) => console.log(`[stack] ${line}`), env = process.env } = {}) {
  const p = await plan(mode, env);
  const started = Date.now();
  const timings = {};
  const s3 = { endpoint: env.S3_ENDPOINT, stop: async () => undefined };
  const step = async ([name, fn]) => {
    const t0 = Date.now();
    try {
      const what = await fn();
      timings[name] = Date.now() - t0;
      log(`${name}: ${what} (${timings[name]} ms)`);
    } catch (error) {
      throw new Error(`${name}: ${error.message}`, { cause: error });
    }
  };
  const results = await Promise.allSettled(Object.entries(steps(p, log, timings, s3)).map(step));
  const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  if (failures.length) {
    await s3.stop();
    throw new AggregateError(failures, `stack not ready:\n${failures.map((f) => `  - ${f.message}`).join('\n')}`);
  }
  timings.total = Date.now() - started;
  log(`ready in ${timings.total} ms`);
  return { env: appEnv(p, s3), timings, stop: () => s3.stop() };
}
