#!/usr/bin/env node
// npm run bench:jobs [-- --runs=N --events=N]
// Brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds, boots the real app (api + worker, one
// process) and prints two figures:
//  1. dispatch latency: POST /v1/fine_tuning/jobs -> the trainer container started (the engine's own start event),
//     side by side with `docker run -d` of the same image and command on the same engine (CLI, and the bare
//     create+start API calls as a stricter floor), alternating runs; p50 and the ratio (target <= 1.5x docker run);
//  2. event ingest: a container prints N metrics lines as fast as it can; events/s from its start until every
//     line is a row in Postgres (target >= 5,000/s for one worker).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { prepareBench } from './lib/bench-app.mjs';
import { arg, fmt, log, p50, ROOT } from './lib/bench.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const RUNS = arg('runs', 15);
const EVENTS = arg('events', 50_000);

const DISPATCH_CMD = ['node', '-e', 'setTimeout(() => {}, 300)'];
const EVENTS_SCRIPT = `
const n = ${EVENTS}; let out = '';
for (let step = 1; step <= n; step++) {
  out += JSON.stringify({ type: 'metrics', step, total_steps: n, epoch: step / n, train_loss: 1 / step, learning_rate: 1e-4, tokens_per_second: 1000 }) + '\\n';
  if (out.length > 1 << 16) { process.stdout.write(out); out = ''; }
}
process.stdout.write(out, () => process.exit(0));`;

const catalogFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lp-bench-')), 'models.json');
fs.writeFileSync(catalogFile, JSON.stringify([
  { id: 'bench-dispatch', extends: 'tiny-lora', description: 'bench: starts and exits', command: DISPATCH_CMD },
  { id: 'bench-events', extends: 'tiny-lora', description: 'bench: prints metrics', command: ['node', '-e', EVENTS_SCRIPT] },
]));
const bench = await prepareBench({ log, prefix: 'bjobs', overrides: { LOG_LEVEL: 'error', MODEL_CATALOG_FILE: catalogFile } });
const { env } = bench;
let app;
let code = 1;
try {
  const require = createRequire(import.meta.url);
  const { isTerminal } = require(path.join(ROOT, 'dist/training/job-statuses.js'));
  const Docker = require('dockerode');
  const docker = new Docker({ socketPath: env.DOCKER_SOCKET });
  const image = env.TINY_LORA_IMAGE || 'loraplane/tiny-lora:dev';

  app = await bench.startInProcess();
  const api = async (method, p, body, headers = {}) => {
    const res = await fetch(`${app.url}${p}`, { method, headers: { ...bench.auth, ...headers }, body });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `item ${i}` }, { role: 'assistant', content: 'yes' }] })).join('\n');
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob([lines]), 'bench.jsonl');
  const file = await api('POST', '/v1/files', form);

  // The engine's own clock for "started": its start events, by container id.
  const startedAt = new Map();
  const events = await docker.getEvents({ filters: { type: ['container'], event: ['start'] } });
  events.on('data', (buf) => {
    for (const line of buf.toString().split('\n').filter(Boolean)) {
      const e = JSON.parse(line);
      startedAt.set(e.id, Number(BigInt(e.timeNano) / 1000n) / 1000);
    }
  });
  const startOf = async (id) => {
    for (let i = 0; i < 400 && !startedAt.has(id); i++) await new Promise((r) => setTimeout(r, 25));
    if (!startedAt.has(id)) throw new Error(`no start event for ${id}`);
    return startedAt.get(id);
  };
  const settled = async (id) => {
    for (;;) {
      const j = await api('GET', `/v1/fine_tuning/jobs/${id}`);
      if (isTerminal(j.status)) return j;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const exec = promisify(execFile);
  const dockerEnv = { ...process.env, DOCKER_HOST: `unix://${env.DOCKER_SOCKET}` };

  log(`dispatch: ${RUNS} runs of each, alternating`);
  const ours = [];
  const cli = [];
  const bare = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const t0 = Date.now();
    const job = await api('POST', '/v1/fine_tuning/jobs', JSON.stringify({ model: 'bench-dispatch', training_file: file.id }), { 'content-type': 'application/json' });
    let containerId;
    for (let k = 0; k < 400 && !containerId; k++) {
      const [c] = await docker.listContainers({ all: true, filters: { label: [`io.loraplane.job=${job.id}`] } });
      containerId = c?.Id;
      if (!containerId) await new Promise((r) => setTimeout(r, 10));
    }
    const tOurs = (await startOf(containerId)) - t0;
    await settled(job.id);

    const t1 = Date.now();
    const { stdout } = await exec('docker', ['run', '-d', '--network', env.TRAINING_NETWORK || 'host', image, ...DISPATCH_CMD], { env: dockerEnv });
    const cliId = stdout.trim();
    const tCli = (await startOf(cliId)) - t1;

    const t2 = Date.now();
    const c = await docker.createContainer({ Image: image, Cmd: DISPATCH_CMD, HostConfig: { NetworkMode: env.TRAINING_NETWORK || 'host' } });
    await c.start();
    const tBare = (await startOf(c.id)) - t2;
    for (const id of [cliId, c.id]) await docker.getContainer(id).remove({ force: true });
    if (i === 0) continue; // warm-up: first image/container-layer use and JIT
    ours.push(tOurs);
    cli.push(tCli);
    bare.push(tBare);
  }
  events.destroy?.();

  log(`event ingest: ${EVENTS} metrics lines`);
  const job = await api('POST', '/v1/fine_tuning/jobs', JSON.stringify({ model: 'bench-events', training_file: file.id }), { 'content-type': 'application/json' });
  const prisma = app.app.get(require(path.join(ROOT, 'dist/db/prisma.service.js')).PrismaService);
  // A wait that cannot end (the job failed, a column renamed under this script) fails the run instead of hanging it.
  const deadline = Date.now() + 180_000;
  const pause = async (what) => {
    if (Date.now() > deadline) throw new Error(`event ingest: gave up waiting for ${what} (job ${job.id})`);
    await new Promise((r) => setTimeout(r, 20));
  };
  let containerStart;
  for (;;) {
    const j = await prisma.fineTuningJob.findUnique({ where: { id: job.id } });
    if (j.startedAt && j.workloadId) {
      const info = await docker.getContainer(j.workloadId).inspect().catch(() => null);
      if (info) { containerStart = Date.parse(info.State.StartedAt); break; }
    }
    if (isTerminal(j.status)) throw new Error(`event ingest: job ${job.id} ended ${j.status} before its container was seen`);
    await pause('the job\'s container');
  }
  let stored = 0;
  let tDone;
  for (;;) {
    stored = await prisma.jobEvent.count({ where: { jobId: job.id, type: 'metrics' } });
    if (stored >= EVENTS) { tDone = Date.now(); break; }
    await pause(`${EVENTS} metrics rows (${stored} so far)`);
  }
  const ingestSeconds = (tDone - containerStart) / 1000;
  await settled(job.id);

  const ratioCli = p50(ours) / p50(cli);
  const ratioBare = p50(ours) / p50(bare);
  console.log(`dispatch latency, create -> container running (${RUNS} runs each, same engine, same image and command):`);
  console.log(`  loraplane (POST /v1/fine_tuning/jobs -> start event): ${fmt(ours)}`);
  console.log(`  docker run -d (CLI):                                  ${fmt(cli)}`);
  console.log(`  docker API create+start (floor):                      ${fmt(bare)}`);
  console.log(`  ratio vs docker run: ${ratioCli.toFixed(2)}x (target <= 1.5x: ${ratioCli <= 1.5 ? 'met' : 'NOT met'}); vs bare API: ${ratioBare.toFixed(2)}x`);
  const rate = stored / ingestSeconds;
  console.log(`event ingest: ${stored} metrics events from container stdout into Postgres in ${ingestSeconds.toFixed(2)} s = ${Math.round(rate)} events/s (target >= 5000: ${rate >= 5000 ? 'met' : 'NOT met'})`);
  code = 0;
} catch (err) {
  console.error(`[bench] failed: ${err.stack ?? err}`);
} finally {
  await bench.close({ then: () => app?.close() });
}
process.exit(code);
