#!/usr/bin/env node
// npm run bench:api [-- --requests=N --rounds=N --concurrency=50 --log-level=info --cpu-prof]
// Brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds, and runs the api role as its own process
// (dist/main.js, LORAPLANE_ROLE=api, the default log level: one access-log line per request, as production pays).
// This process is the load: `concurrency` keep-alive clients, each with one request in flight. Prints:
//  1. authenticated GET /v1/models and GET /v1/fine_tuning/jobs/{id}: requests/s (median of the rounds; target
//     >= 3,000 each), p50 and p99 latency, and the api process's own CPU time per request (load-independent);
//  2. key revocation under load: from the revoke's commit to the first 401 for that key, once revoked by another
//     process (a direct UPDATE, as another replica's revoke reaches this one) and once through this api (target <= 1 s);
//  3. job read freshness under load: from a status change committed by another process (the worker) to the first
//     GET that shows it (same bound).
// --cpu-prof writes a V8 CPU profile of the api process to .data/profiles/ (open it in Chrome DevTools).
// The load generator shares the machine's cores with the api, Postgres and whatever else runs; the load average is
// printed with the figures.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { prepareBench, until } from './lib/bench-app.mjs';
import { arg, cpuSeconds, freePort, log, p50, ROOT } from './lib/bench.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const REQUESTS = arg('requests', 20_000);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = arg('concurrency', 50);
const LOG_LEVEL = process.argv.find((a) => a.startsWith('--log-level='))?.split('=')[1] ?? 'info';
const PROFILE = process.argv.includes('--cpu-prof');
const PROFILE_DIR = path.join(ROOT, '.data/profiles');

/** One GET over a keep-alive agent: { status, ms, body? } (the body only when asked for). */
function get(agent, url, headers, { body = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(url, { agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => body && chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, body: body ? Buffer.concat(chunks).toString() : undefined }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** `total` GETs from `concurrency` clients; every answer must be 200. */
async function load(url, headers, total, pid) {
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < total) {
      const r = await get(agent, url, headers);
      if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
      latencies.push(r.ms);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const cpuUs = pid ? ((cpuSeconds(pid) - cpu0) * 1e6) / total : NaN;
  return { rps: total / seconds, p50: p50(latencies), p99: latencies[Math.floor(latencies.length * 0.99)], cpuUs };
}

/**
 * Runs `concurrency` clients on `url` until `done(response)` says so; `change()` is called once the load is
 * flowing and returns when its change has committed. Resolves with the ms from that commit to the first done answer.
 */
async function timeToSee(url, headers, change, done) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let changing = false;
  let committedAt = null;
  let seenAt = null;
  let failure = null;
  const client = async () => {
    while (seenAt === null) {
      const r = await get(agent, url, headers, { body: true });
      // While change() runs its commit may already be visible: only an answer before it started is wrong.
      if (!changing && done(r)) throw new Error(`${url} answered the changed way before the change (${r.status}: ${r.body?.slice(0, 300)})`);
      if (changing && seenAt === null && done(r)) seenAt = performance.now();
    }
  };
  // A failing client stops them all (seenAt set) and is reported once they have stopped.
  const clients = Array.from({ length: CONCURRENCY }, () => client().catch((err) => ((failure ??= err), (seenAt ??= NaN))));
  await new Promise((r) => setTimeout(r, 500));
  if (seenAt === null) {
    changing = true;
    await change();
    committedAt = performance.now();
  }
  const deadline = setTimeout(() => (seenAt ??= Infinity), 10_000);
  await Promise.all(clients);
  clearTimeout(deadline);
  agent.destroy();
  if (failure) throw failure;
  // Seen before change() returned: the change was visible as soon as it committed.
  return Math.max(0, seenAt - committedAt);
}

/** A small valid chat dataset (the tiny model's format), uploaded as a fine-tune file; returns its id. */
async function uploadDataset(base, auth) {
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `ticket ${i}: my card was charged twice` }, { role: 'assistant', content: i % 2 ? 'billing' : 'refund' }] }));
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob([`${lines.join('\n')}\n`]), 'bench.jsonl');
  const res = await fetch(`${base}/v1/files`, { method: 'POST', headers: auth, body: form });
  const file = await res.json();
  if (!res.ok || file.status === 'error') throw new Error(`upload answered ${res.status}: ${JSON.stringify(file)}`);
  return file.id;
}

async function json(res) {
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.url} answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'not within 10 s');
const bench = await prepareBench({ log, prefix: 'bapi', overrides: { LOG_LEVEL } });
const { appEnv, auth } = bench;
const db = new pg.Client({ connectionString: bench.env.DATABASE_URL });
let code = 1;
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  if (PROFILE) fs.mkdirSync(PROFILE_DIR, { recursive: true });
  const nodeArgs = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const api = bench.spawnNode([path.join(ROOT, 'dist/main.js')], { ...appEnv, LORAPLANE_ROLE: 'api', PORT: String(port) }, { nodeArgs });
  await until('the api', () => fetch(`${base}/healthz`).then((r) => r.ok), 60_000);
  await db.connect();

  const post = (route, body, headers = auth) => fetch(`${base}/v1${route}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(json);
  const fileId = await uploadDataset(base, auth);
  const job = await post('/fine_tuning/jobs', { model: 'tiny-lora', training_file: fileId });
  const routes = [['GET /v1/models', `${base}/v1/models`], [`GET /v1/fine_tuning/jobs/{id}`, `${base}/v1/fine_tuning/jobs/${job.id}`]];

  log(`warming up; then ${ROUNDS} rounds of ${REQUESTS} requests per route at ${CONCURRENCY} concurrent clients`);
  for (const [, url] of routes) await load(url, auth, 5000);
  const figures = routes.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (const [j, [name, url]] of routes.entries()) {
      figures[j].push(await load(url, auth, REQUESTS, api.pid));
      log(`round ${i + 1}: ${name} ${figures[j].at(-1).rps.toFixed(0)} req/s, api CPU ${figures[j].at(-1).cpuUs.toFixed(0)} us/request`);
    }
  }
  const loadDuring = os.loadavg();

  // Revocation under load, with keys made for it (the bootstrap key keeps working).
  const revoked = (r) => r.status === 401;
  const other = await post('/api_keys', { name: 'bench-revoke-elsewhere' });
  const bySql = await timeToSee(`${base}/v1/models`, { authorization: `Bearer ${other.value}` }, () => db.query('UPDATE "ApiKey" SET "revokedAt" = now() WHERE id = $1', [other.id]), revoked);
  const mine = await post('/api_keys', { name: 'bench-revoke-here' });
  const byApi = await timeToSee(`${base}/v1/models`, { authorization: `Bearer ${mine.value}` }, async () => {
    const res = await fetch(`${base}/v1/api_keys/${mine.id}`, { method: 'DELETE', headers: auth });
    if (!res.ok) throw new Error(`revoke answered ${res.status}`);
  }, revoked);
  // The job's status moved by another process (as the worker does), read under load.
  const cancelled = (r) => r.status === 200 && JSON.parse(r.body).status === 'cancelled';
  const fresh = await timeToSee(routes[1][1], auth, () => db.query(`UPDATE "FineTuningJob" SET status = 'cancelled', "finishedAt" = now() WHERE id = $1`, [job.id]), cancelled);

  const med = (xs, f) => p50(xs.map(f));
  const rows = [['', 'req/s (median)', 'p50 ms', 'p99 ms', 'api CPU us/req', 'target'], ...routes.map(([name], j) => [
    `${name}, ${CONCURRENCY} concurrent`, med(figures[j], (x) => x.rps).toFixed(0), med(figures[j], (x) => x.p50).toFixed(2), med(figures[j], (x) => x.p99).toFixed(2), med(figures[j], (x) => x.cpuUs).toFixed(0), '>= 3000 req/s',
  ]),
  ['key revoked by another process: first 401 after', ms(bySql), '', '', '', '<= 1000 ms'],
  ['key revoked through this api: first 401 after', ms(byApi), '', '', '', '<= 1000 ms'],
  ['job status changed by another process: first GET showing it after', ms(fresh), '', '', '', '<= 1000 ms']];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  console.log(`(load average after the throughput rounds: ${loadDuring.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores; api log level ${LOG_LEVEL})`);
  code = 0;
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  log(`what the spawned processes logged last:\n${bench.logTail()}`);
} finally {
  await db.end().catch(() => undefined);
  // SIGINT: the api shuts down cleanly, so that --cpu-prof writes its profile.
  await bench.close({ signal: PROFILE ? 'SIGINT' : 'SIGKILL' });
  if (PROFILE) log(`CPU profile(s) in ${path.relative(ROOT, PROFILE_DIR)}: ${fs.readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.cpuprofile')).join(', ')}`);
  process.exit(code);
}
