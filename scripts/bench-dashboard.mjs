#!/usr/bin/env node
// npm run bench:dashboard [-- --points=50000 --rounds=3]
// The dashboard's loss chart with a big job: brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds
// (server and dashboard), boots the real app, creates a job through the API, cancels it, and gives it N metric
// events (the rows a trainer's metrics lines become). Then Debian's Chromium opens the job page as a user would.
// Prints, per round: the chart's draw time for all N points (uPlot setData + draw, read from the chart's
// data-render-ms) against the 1 s target, and the time from navigation until the chart holds all N points (which
// includes streaming N events over server-sent events), plus the first load's gzipped JavaScript.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDeps } from './lib/ensure-deps.mjs';
import { arg, fmt, log, p50, run } from './lib/bench.mjs';
import { firstLoadJs } from './web-size.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POINTS = arg('points', 50_000);
const ROUNDS = arg('rounds', 3);
const TARGET_MS = 1000;

await ensureDeps({ log });
const { ensureStack } = await import('./lib/stack.mjs');
const stack = await ensureStack({ mode: 'test', log });
let app;
let browser;
let code = 1;
try {
  const env = { ...process.env, ...stack.env };
  await run('npm', ['run', 'build', '--silent'], env);
  const require = createRequire(import.meta.url);
  const { start } = require(path.join(ROOT, 'dist/main.js'));
  const { Config } = require(path.join(ROOT, 'dist/config/config.js'));
  const { PrismaService } = require(path.join(ROOT, 'dist/db/prisma.service.js'));
  const { newId } = require(path.join(ROOT, 'dist/common/ids.js'));
  const key = `lp_${randomBytes(24).toString('hex')}`;
  const config = Config.fromEnv({ ...env, LORAPLANE_API_KEY: key, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', QUEUE_PREFIX: `bench${randomBytes(3).toString('hex')}` });
  app = await start(config);
  const call = async (method, route, body, headers = {}) => {
    const res = await fetch(`${app.url}/v1${route}`, { method, headers: { authorization: `Bearer ${key}`, ...headers, ...(body && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}) }, body: body instanceof FormData ? body : body && JSON.stringify(body) });
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const form = new FormData();
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: `a${i}` }] }));
  form.append('file', new Blob([lines.join('\n')]), 'bench.jsonl');
  const dataset = await call('POST', '/datasets', form);
  const job = await call('POST', '/fine_tuning/jobs', { model: 'tiny-lora', training_file: dataset.id, suffix: 'chart-bench' });
  await call('POST', `/fine_tuning/jobs/${job.id}/cancel`);
  const prisma = app.app.get(PrismaService);
  const { projectId } = await prisma.fineTuningJob.findUniqueOrThrow({ where: { id: job.id } });
  const t0 = Date.now();
  for (let from = 0; from < POINTS; from += 5000) {
    const rows = [];
    for (let step = from + 1; step <= Math.min(POINTS, from + 5000); step++) {
      const data = { step, total_steps: POINTS, epoch: step / POINTS, train_loss: 2 / Math.sqrt(step) + 0.05 * Math.random(), valid_loss: step % 50 ? undefined : 2.1 / Math.sqrt(step), learning_rate: 1e-4 * (1 - step / POINTS), tokens_per_second: 9000 + 500 * Math.sin(step / 300) };
      rows.push({ id: newId.event(), jobId: job.id, projectId, level: 'info', type: 'metrics', message: `Step ${step}/${POINTS}`, data });
    }
    await prisma.jobEvent.createMany({ data: rows });
  }
  log(`${POINTS} metric events written in ${Date.now() - t0} ms`);

  // The same stream read by Node alone: how much of the page's time is the server sending the events.
  const s0 = Date.now();
  const stream = await fetch(`${app.url}/v1/fine_tuning/jobs/${job.id}/events/stream`, { headers: { authorization: `Bearer ${key}` } });
  let bytes = 0;
  for await (const chunk of stream.body) bytes += chunk.length;
  const streamMs = Date.now() - s0;
  log(`SSE stream of ${POINTS} events: ${(bytes / 1e6).toFixed(1)} MB in ${streamMs} ms`);

  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const renders = [];
  const loads = [];
  for (let round = 0; round < ROUNDS; round++) {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    await page.goto(app.url);
    await page.evaluate((k) => sessionStorage.setItem('loraplane.apiKey', k), key);
    const started = Date.now();
    await page.goto(`${app.url}/#/jobs/${job.id}`);
    const chart = page.locator('figure.chart', { has: page.getByRole('img', { name: /training and validation loss/ }) });
    for (let last = -1; ; ) {
      const n = Number(await chart.getAttribute('data-points').catch(() => 0));
      if (n === POINTS) break;
      if (Date.now() - started > 600_000) throw new Error(`the chart holds ${n} of ${POINTS} points after 10 minutes`);
      if (n !== last && n % 10_000 < 500) log(`round ${round + 1}: ${n} points after ${Date.now() - started} ms`);
      last = n;
      await new Promise((r) => setTimeout(r, 50));
    }
    loads.push(Date.now() - started);
    // The stream delivers in batches; the chart's last draw is the one that holds every point.
    renders.push(Number(await chart.getAttribute('data-render-ms')));
    await page.close();
  }
  const size = firstLoadJs().reduce((s, f) => s + f.gzip, 0);
  console.log(`loss chart draw with ${POINTS.toLocaleString('en-US')} points: ${fmt(renders)} (target < ${TARGET_MS} ms)`);
  console.log(`job page open until the chart holds all ${POINTS.toLocaleString('en-US')} points (SSE included): ${fmt(loads)}`);
  console.log(`the same SSE stream read by Node alone: ${streamMs} ms`);
  console.log(`first load JavaScript: ${(size / 1024).toFixed(1)} KB gzipped (budget 300 KB)`);
  code = p50(renders) < TARGET_MS ? 0 : 1;
} finally {
  await browser?.close();
  await app?.close();
  await stack.stop();
}
process.exit(code);
