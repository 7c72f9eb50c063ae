// The services loraplane needs on a development or CI machine (Debian 12, as root): PostgreSQL, Redis, a Docker
// engine and an S3-protocol server. Each is reused when it already answers (a probe of a few ms), started when it is
// installed but down, and installed from Debian's packages when missing. Nothing is stopped here, except the test
// S3 server through the returned stop(); the services outlive the script, as a developer's machine expects.
//
// PostgreSQL auth: the app connects as `postgres` over TCP to 127.0.0.1 without a password (the machines of this
// project are set up so). Debian's own default for host connections is scram-sha-256, so when a login as postgres
// fails for want of a password on a freshly installed or started server, trust for 127.0.0.1/32 and ::1/128 is added
// at the top of pg_hba.conf (marked with a comment) and the server reloaded: loopback only, on a dev/CI machine.
// Anywhere else set DATABASE_URL with a password yourself (dev mode honours it).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import pg from 'pg';
import { ROOT, deployMigrations, dropDatabase } from './migrations.mjs';
import { contentTag, ensureTinyLoraImage } from './tiny-lora-image.mjs';

const DATA_DIR = path.join(ROOT, '.data');
const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

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

// ---------------------------------------------------------------------------------------------------------------
// small helpers

/** Runs a command to completion; rejects with its output when it fails. */
function run(command, args, { env = process.env, timeoutMs = 15 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.slice(-4000)}`)),
    );
  });
}

/** Whether `name` is an executable on PATH (or the sbin folders, which a non-login root shell may lack). */
function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this folder; try the next one
    }
  }
  return null;
}

function tcpOpen(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitFor(what, probe, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(intervalMs);
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

const CHROMIUM = '/usr/bin/chromium';

function requireRoot(what) {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root; install/start it yourself or run as root`);
}

// apt: one `apt-get update` per process, and one apt-get at a time (dpkg holds a lock), while the four services are
// otherwise brought up in parallel.
let aptQueue = Promise.resolve();
let aptUpdated = false;
function aptInstall(packages, log) {
  const install = async () => {
    requireRoot(`installing ${packages.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' };
    if (!aptUpdated) {
      log(`apt-get update`);
      await run('apt-get', ['update'], { env });
      aptUpdated = true;
    }
    log(`apt-get install ${packages.join(' ')}`);
    // No recommends: they add nothing these services need (and needrestart would ask questions).
    await run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env });
  };
  const result = aptQueue.then(install);
  // The next install waits for this one whatever its outcome; the outcome itself goes to this caller.
  aptQueue = result.then(
    () => undefined,
    () => undefined,
  );
  return result;
}

/** Starts a long-lived process in its own session, output to .data/<name>.log, so that it outlives this script. */
function spawnDetached(name, command, args) {
  fs.mkdirSync(DATA_DIR, { recursive: true });
  const logFile = path.join(DATA_DIR, `${name}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], cwd: ROOT });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? `exit ${code}`));
  child.on('error', (error) => (exited = error.message));
  child.unref();
  const logTail = () => {
    try {
      return fs.readFileSync(logFile, 'utf8').slice(-2000);
    } catch (error) {
      return `(no log: ${error.message})`;
    }
  };
  return { child, logFile, exited: () => exited, logTail };
}

/** waitFor that gives up at once when the process we started has died, with its log. */
async function waitForStarted(what, started, probe, timeoutMs) {
  await waitFor(
    what,
    async () => {
      if (started.exited()) throw new Error(`${what} exited (${started.exited()}); ${started.logFile}:\n${started.logTail()}`);
      return probe();
    },
    timeoutMs,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

function pgClusters() {
  // Ver Cluster Port Status Owner Data-directory Log-file
  return run('pg_lsclusters', ['--no-header']).then((out) =>
    out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [version, name, port, status] = line.trim().split(/\s+/);
        return { version, name, port: Number(port), status };
      }),
  );
}

/** The Debian cluster on `port`; created (as `main`) only where the package made none, never beside others. */
async function pgCluster(port) {
  const clusters = await pgClusters();
  const cluster = clusters.find((c) => c.port === port);
  if (cluster) return cluster;
  if (clusters.length) {
    const found = clusters.map((c) => `${c.version}/${c.name} on ${c.port}`).join(', ');
    throw new Error(`no PostgreSQL cluster on port ${port} (found ${found}): set DATABASE_URL to one of them`);
  }
  const version = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))[0];
  if (!version) throw new Error('PostgreSQL is installed but /usr/lib/postgresql has no version');
  requireRoot('creating a PostgreSQL cluster');
  await run('pg_createcluster', ['--port', String(port), version, 'main']);
  return { version, name: 'main', port, status: 'down' };
}

const AUTH_FAILED = new Set(['28P01', '28000']); // invalid_password, invalid_authorization_specification

async function canLogin(config) {
  const client = new pg.Client({ ...config, database: 'postgres' });
  try {
    await client.connect();
    return true;
  } catch (error) {
    // Refused by pg_hba, a wrong password, or (pg's own message) a password asked for and none given.
    if (AUTH_FAILED.has(error.code) || /client password must be a string/.test(error.message)) return false;
    throw error;
  } finally {
    await client.end().catch(() => undefined); // a client that never connected has nothing to close
  }
}

const TRUST_MARK = '# loraplane (scripts/lib/stack.mjs): passwordless loopback for development';

async function trustLoopback(cluster, log) {
  requireRoot('configuring PostgreSQL authentication');
  const hba = `/etc/postgresql/${cluster.version}/${cluster.name}/pg_hba.conf`;
  const current = fs.readFileSync(hba, 'utf8');
  if (current.includes(TRUST_MARK)) throw new Error(`${hba} already trusts loopback, yet the login as postgres fails`);
  fs.writeFileSync(
    hba,
    `${TRUST_MARK}\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n\n${current}`,
  );
  log(`added loopback trust to ${hba}`);
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', cluster.version, cluster.name, 'reload']);
}

async function ensurePostgresServer(databaseUrl, log) {
  const url = new URL(databaseUrl);
  const host = url.hostname;
  const port = Number(url.port || 5432);
  if (await tcpOpen(host, port)) return 'running';
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`PostgreSQL at ${host}:${port} does not answer (not local: not started here)`);
  }
  let how = 'started';
  if (!which('pg_ctlcluster')) {
    await aptInstall(['postgresql'], log);
    how = 'installed and started';
  }
  const cluster = await pgCluster(port);
  // The package's own start may have raced us: start only what is still down.
  if (!(await tcpOpen(host, port))) {
    requireRoot('starting PostgreSQL');
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', cluster.version, cluster.name, 'start']);
  }
  await waitFor(`PostgreSQL on ${host}:${port}`, () => tcpOpen(host, port), 30_000);
  const config = { host, port, user: decodeURIComponent(url.username) || 'postgres', password: url.password || undefined };
  if (!(await canLogin(config))) {
    await trustLoopback(cluster, log);
    if (!(await canLogin(config))) throw new Error('PostgreSQL still refuses the login as postgres from loopback');
  }
  return how;
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

/** PING over a raw socket: a few ms, no client library to load. */
function redisAnswers(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

/** Empties one Redis database (SELECT n, FLUSHDB) over a raw socket. */
function redisFlushDb(host, port, db) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('Redis FLUSHDB timed out')));
    socket.once('connect', () => socket.write(`SELECT ${db}\r\nFLUSHDB\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk;
      const lines = reply.split('\r\n').filter(Boolean);
      if (lines.length < 2) return;
      socket.destroy();
      if (lines.every((line) => line === '+OK')) resolve();
      else reject(new Error(`Redis FLUSHDB on db ${db}: ${reply.trim()}`));
    });
    socket.once('error', reject);
  });
}

async function ensureRedis(redisUrl, log) {
  const url = new URL(redisUrl);
  const host = url.hostname;
  const port = Number(url.port || 6379);
  if (await redisAnswers(host, port)) return 'running';
  if (await tcpOpen(host, port)) throw new Error(`${host}:${port} is open but does not answer PING like Redis`);
  if (!['127.0.0.1', 'localhost'].includes(host)) throw new Error(`Redis at ${host}:${port} does not answer (not local)`);
  let how = 'started';
  if (!which('redis-server')) {
    await aptInstall(['redis-server'], log);
    how = 'installed and started';
  }
  if (!(await redisAnswers(host, port))) {
    // Nothing persisted: queues are rebuilt from PostgreSQL (ARCHITECTURE.md), and a dev machine needs no dump files.
    await run(which('redis-server'), ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no']);
  }
  await waitFor(`Redis on ${host}:${port}`, () => redisAnswers(host, port), 10_000);
  return how;
}

// ---------------------------------------------------------------------------------------------------------------
// Docker engine

async function dockerAnswers(docker) {
  try {
    await docker.ping({ abortSignal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false; // no socket, refused or no answer: all mean "not up"
  }
}

/** A dockerd that is alive but still starting holds /var/run/docker.pid; a dead one's pid file blocks a new start. */
function runningDockerdPid() {
  const pidFile = '/var/run/docker.pid';
  let pid;
  try {
    pid = fs.readFileSync(pidFile, 'utf8').trim();
  } catch {
    return null; // no pid file: no dockerd
  }
  // "pid (comm) state ...": a killed dockerd can linger as a zombie (state Z) where PID 1 does not reap orphans.
  let stat = '';
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // process gone
  }
  const alive = stat.includes('(dockerd)') && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  if (alive) return Number(pid);
  fs.rmSync(pidFile, { force: true });
  return null;
}

async function ensureDocker(socketPath, log) {
  const docker = new Docker({ socketPath });
  if (await dockerAnswers(docker)) return { docker, how: 'running' };
  if (socketPath !== DEFAULT_DOCKER_SOCKET) throw new Error(`no Docker engine answers on ${socketPath} (not started here)`);
  let how = 'started';
  if (!which('dockerd')) {
    await aptInstall(['docker.io'], log);
    how = 'installed and started';
  }
  if (await dockerAnswers(docker)) return { docker, how: 'running' }; // the package started it
  const pid = runningDockerdPid();
  if (pid) {
    log(`dockerd (pid ${pid}) is running but not answering yet; waiting for it`);
    await waitFor('the Docker engine', () => dockerAnswers(docker), 60_000, 250);
    return { docker, how: 'waited for' };
  }
  requireRoot('starting dockerd');
  const started = spawnDetached('dockerd', which('dockerd'), []);
  log(`dockerd started (pid ${started.child.pid}, log ${path.relative(ROOT, started.logFile)})`);
  await waitForStarted('the Docker engine', started, () => dockerAnswers(docker), 60_000);
  return { docker, how };
}

async function ensureTinyImage(docker, tag, log) {
  await ensureTinyLoraImage({ docker, tag, log });
  return tag;
}

// ---------------------------------------------------------------------------------------------------------------
// S3 (s3rver)

/** HEAD on the bucket: 200 = there, 404 = an S3 server without it, null = nothing listening. */
function headBucket(endpoint, bucket, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const request = http.request(new URL(`/${bucket}`, endpoint), { method: 'HEAD', timeout: timeoutMs }, (response) => {
      response.resume();
      resolve({ status: response.statusCode, xml: /xml/.test(response.headers['content-type'] ?? '') });
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => resolve(null));
    request.end();
  });
}

async function ensureS3(mode, settings, log) {
  const endpoint = `http://127.0.0.1:${settings.s3Port}`;
  const found = await headBucket(endpoint, settings.bucket);
  if (found?.status === 200 || found?.status === 404) return { endpoint, how: 'running', stop: async () => undefined };
  if (found) throw new Error(`port ${settings.s3Port} answers, but not like an S3 server (HEAD /${settings.bucket}: ${found.status})`);
  const args = [path.join(ROOT, 'scripts/s3-server.mjs'), '--port', String(settings.s3Port), '--bucket', settings.bucket];
  args.push(...(mode === 'dev' ? ['--directory', path.join(DATA_DIR, 's3')] : ['--temp']));
  const started = spawnDetached(`s3-${mode}`, process.execPath, args);
  await waitForStarted(`s3rver on ${endpoint}`, started, async () => (await headBucket(endpoint, settings.bucket))?.status === 200, 15_000);
  const stop = async () => {
    if (started.exited()) return;
    started.child.kill('SIGTERM');
    await waitFor('s3rver to stop', () => started.exited() !== null, 5000, 25).catch(() => started.child.kill('SIGKILL'));
  };
  return { endpoint, how: `started (pid ${started.child.pid})`, stop };
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Brings up (or reuses) PostgreSQL with a migrated database, Redis, a Docker engine (+ the tiny trainer image) and an
 * S3 server for `mode`, and returns the environment the app needs. In dev mode DATABASE_URL, REDIS_URL, S3_ENDPOINT
 * and DOCKER_SOCKET from `env` are honoured; in test mode only S3_ENDPOINT and DOCKER_SOCKET are, so that tests never
 * run against a developer's own database or queues.
 * Returns { env, timings, stop } where stop() ends what this call started for tests (the test S3 server).
 */
async function ensureKubectl(log) {
  const found = which('kubectl');
  if (found) return `kubectl at ${found}`;
  await aptInstall(['kubectl'], log);
  return 'kubectl installed from Debian';
}

export async function ensureStack({ mode = 'dev', log = (line) => console.log(`[stack] ${line}`), env = process.env } = {}) {
  const settings = testSlot(MODES[mode], mode, env.LORAPLANE_TEST_SLOT);
  if (!settings) throw new Error(`unknown stack mode ${mode}`);
  // Tests start from empty state: their database and Redis db are recreated on every run, because the test S3
  // server keeps its objects in a temporary folder, and rows left from an earlier run would point at objects that
  // are gone (datasets are deduplicated by content).
  const fresh = mode === 'test';
  const own = (name) => (mode === 'dev' ? env[name] || undefined : undefined);
  const databaseUrl = own('DATABASE_URL') ?? `postgresql://postgres@127.0.0.1:5432/${settings.database}`;
  const redisUrl = own('REDIS_URL') ?? `redis://127.0.0.1:6379/${settings.redisDb}`;
  const dockerSocket = env.DOCKER_SOCKET || DEFAULT_DOCKER_SOCKET;
  // Test runs tag the trainer image by its sources: checkouts sharing one Docker engine (worktrees, benches) never
  // rebuild each other's image under a shared tag while a run uses it.
  const tinyImage = env.TINY_LORA_IMAGE || (mode === 'test' ? await contentTag() : 'loraplane/tiny-lora:dev');
  const started = Date.now();
  const timings = {};

  const step = async (name, fn) => {
    const t0 = Date.now();
    try {
      const what = await fn();
      timings[name] = Date.now() - t0;
      log(`${name}: ${what} (${timings[name]} ms)`);
    } catch (error) {
      throw new Error(`${name}: ${error.message}`, { cause: error });
    }
  };

  let s3 = { endpoint: env.S3_ENDPOINT, stop: async () => undefined };
  const results = await Promise.allSettled([
    step('postgres', async () => {
      const how = await ensurePostgresServer(databaseUrl, log);
      if (fresh) await dropDatabase(databaseUrl);
      const out = await deployMigrations(databaseUrl);
      const db = new URL(databaseUrl).pathname.slice(1);
      const migrated = out.applied.length ? `applied ${out.applied.join(', ')} (${out.via})` : 'migrations up to date';
      return `${how}; database ${db}${fresh ? ' recreated' : out.createdDatabase ? ' created' : ''}, ${migrated}`;
    }),
    step('redis', async () => {
      const how = await ensureRedis(redisUrl, log);
      if (!fresh) return how;
      const url = new URL(redisUrl);
      await redisFlushDb(url.hostname, Number(url.port || 6379), settings.redisDb);
      return `${how}; db ${settings.redisDb} flushed`;
    }),
    step('docker', async () => {
      const { docker, how } = await ensureDocker(dockerSocket, log);
      const t0 = Date.now();
      const image = await ensureTinyImage(docker, tinyImage, log);
      timings['tiny-image'] = Date.now() - t0;
      return `${how}; tiny trainer image ${image} in ${timings['tiny-image']} ms`;
    }),
    // The dashboard's end-to-end spec drives Debian's Chromium (test mode only; dev machines bring their browser).
    ...(mode === 'test'
      ? [step('chromium', async () => {
          if (fs.existsSync(CHROMIUM)) return `${CHROMIUM} present`;
          await aptInstall(['chromium', 'fonts-liberation'], log);
          return `installed ${CHROMIUM}`;
        })]
      : []),
    step('s3', async () => {
      if (env.S3_ENDPOINT) return `using S3_ENDPOINT ${env.S3_ENDPOINT}`;
      s3 = await ensureS3(mode, settings, log);
      return `s3rver ${s3.how} at ${s3.endpoint}, bucket ${settings.bucket}`;
    }),
    // The deploy manifests are rendered with Debian's kubectl (kustomize built in) by the test suite.
    ...(mode === 'test' ? [step('kubectl', () => ensureKubectl(log))] : []),
  ]);
  const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  if (failures.length) {
    await s3.stop();
    throw new AggregateError(failures, `stack not ready:\n${failures.map((f) => `  - ${f.message}`).join('\n')}`);
  }
  timings.total = Date.now() - started;
  log(`ready in ${timings.total} ms`);

  return {
    env: {
      LORAPLANE_MODE: 'dev',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: settings.queuePrefix,
      ...(env.S3_ENDPOINT
        ? { S3_ENDPOINT: env.S3_ENDPOINT }
        : { S3_ENDPOINT: s3.endpoint, S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', S3_REGION: 'us-east-1' }),
      S3_BUCKET: settings.bucket,
      S3_FORCE_PATH_STYLE: 'true',
      S3_CREATE_BUCKET: 'true',
      DOCKER_SOCKET: dockerSocket,
      // Trainer containers fetch and upload through presigned URLs to s3rver on 127.0.0.1: only host networking
      // lets them reach the host's loopback.
      TRAINING_NETWORK: 'host',
      TINY_LORA_IMAGE: tinyImage,
      ...(mode === 'test' ? { CHROMIUM_PATH: CHROMIUM } : {}),
    },
    timings,
    stop: () => s3.stop(),
  };
}
