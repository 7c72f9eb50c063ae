// PostgreSQL: reuse the server that answers, else start (or install) Debian's cluster on the URL's port. Auth: the
// app connects as `postgres` over TCP to 127.0.0.1 without a password (the machines of this project are set up so).
// Debian's own default for host connections is scram-sha-256, so when a login as postgres fails for want of a
// password on a freshly installed or started server, trust for 127.0.0.1/32 and ::1/128 is added at the top of
// pg_hba.conf (marked with a comment) and the server reloaded: loopback only, on a dev/CI machine. Anywhere else
// set DATABASE_URL with a password yourself (dev mode honours it).
import fs from 'node:fs';
import pg from 'pg';
import { aptInstall, requireRoot, run, tcpOpen, waitFor, which } from './system.mjs';

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

export async function ensurePostgresServer(databaseUrl, log) {
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
