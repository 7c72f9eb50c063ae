#!/usr/bin/env node
// npm run bench:gateway [-- --requests=N --rounds=N --concurrency=64 --limits]
// Brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds, boots the control plane (api + worker) in this
// process and the gateway role as its own process (dist/main.js, LORAPLANE_ROLE=gateway), with one tiny
// vLLM-compatible replica and its agent. Prints, side by side in one run:
//  1. 64 concurrent non-streaming chat completions, directly to the replica vs through the gateway (alternating
//     rounds, median): throughput ratio (target >= 0.9) and added p50 latency (target <= 2 ms);
//  2. streaming time to first token, direct vs gateway, p50 and the difference (target <= 2 ms);
//  3. the gateway process's own CPU time per request against a zero-latency upstream (aim <= 100 us).
// Everything shares this machine's cores (load generator, gateway, replica), which production does not.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { prepareBench, until } from './lib/bench-app.mjs';
import { arg, freePort, log, p50, ROOT } from './lib/bench.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const REQUESTS = arg('requests', 3000);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = arg('concurrency', 64);
// --limits: per-key and per-project limits set (usage metering, metrics and per-adapter figures are always on).
const LIMITS = process.argv.includes('--limits');
/** One request over a keep-alive agent; resolves with the latency, or the time to the first content event. */
function request(agent, url, headers, body, { ttft = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      // Time to first token: the second event (the first after the role-only chunk) reaching the client.
      let first = null;
      let text = '';
      let errorBody = '';
      res.on('data', (c) => {
        if (res.statusCode !== 200) errorBody += c.toString();
        if (ttft && first === null) {
          text += c.toString();
          if (text.split('\n\n').length > 2) first = performance.now() - t0;
        }
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(ttft ? first : performance.now() - t0) : reject(new Error(`${url} answered ${res.statusCode}: ${errorBody.slice(0, 300)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function load(url, headers, body, concurrency, total) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) latencies.push(await request(agent, url, headers, body));
  }));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return { rps: total / seconds, p50: p50(latencies) };
}

async function ttfts(url, headers, body, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await request(agent, url, headers, body, { ttft: true }));
  agent.destroy();
  return p50(xs);
}

/** user + system CPU seconds of a process, from /proc (Linux). */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const bench = await prepareBench({ log, prefix: 'bgw', overrides: { RECONCILE_INTERVAL_MS: '1000' } });
const { appEnv, auth } = bench;
let app;
let code = 1;
try {
  app = await bench.startInProcess();
  const api = (route, body) => fetch(`${app.url}/v1${route}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  // The replica: the tiny server and its agent, as production runs them.
  const [vp, ap, gp] = [await freePort(), await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gw-'));
  const token = `bench-token-${randomBytes(8).toString('hex')}`;
  const vllmUrl = `http://127.0.0.1:${vp}`;
  bench.spawnNode([path.join(ROOT, 'jobs/tiny-lora/server.js'), '--port', String(vp), '--enable-lora', '--max-loras', '4', '--max-lora-rank', '8'], { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' });
  bench.spawnNode([path.join(ROOT, 'adapters/agent/agent.js')], { ...process.env, AGENT_TOKEN: token, AGENT_HOST: '127.0.0.1', AGENT_PORT: String(ap), VLLM_URL: vllmUrl, ADAPTER_DIR: dir });
  await until('the replica', () => fetch(`${vllmUrl}/health`).then((r) => r.ok));
  await until('the agent', () => fetch(`http://127.0.0.1:${ap}/healthz`).then((r) => r.ok));
  await api('/serving/pools', { name: 'bench', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 });
  await api('/serving/pools/bench/replicas', { name: 'r0', vllm_url: vllmUrl, agent_url: `http://127.0.0.1:${ap}`, agent_token: token });
  if (LIMITS) {
    // Limits on the key and its project, high enough never to refuse: every request pays the Redis round trip.
    const put = (route, body) => fetch(`${app.url}/v1${route}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const keys = (await (await fetch(`${app.url}/v1/api_keys`, { headers: auth })).json()).data;
    const project = await (await fetch(`${app.url}/v1/project`, { headers: auth })).json();
    for (const k of keys) await put(`/api_keys/${k.id}/rate_limits`, { rpm: 1e9, tpm: 1e9 });
    await put(`/admin/projects/${project.id}/rate_limits`, { rpm: 1e9, tpm: 1e9 });
    log('limits on: rpm and tpm set on the key and on its project (checked in Redis on every request)');
  }

  // A zero-latency upstream (canned answer at once) for the gateway's own CPU cost, as a provider model.
  const canned = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'zero', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } });
  const zero = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(canned) }).end(canned));
  });
  await new Promise((r) => zero.listen(0, '127.0.0.1', r));
  await api('/provider_models', { name: 'zero', base_url: `http://127.0.0.1:${zero.address().port}/v1` });

  const gateway = bench.spawnNode([path.join(ROOT, 'dist/main.js')], { ...appEnv, LORAPLANE_ROLE: 'gateway', PORT: String(gp) });
  const gw = `http://127.0.0.1:${gp}`;
  await until('the replica to be ready', async () => (await (await fetch(`${app.url}/v1/serving/pools/bench`, { headers: auth })).json()).replicas[0].status === 'ready', 30_000);
  await until('the gateway to route tiny-lora and zero', async () => {
    const res = await fetch(`${gw}/v1/models`, { headers: auth });
    const ids = (await res.json()).data?.map((m) => m.id) ?? [];
    if (!ids.includes('tiny-lora') || !ids.includes('zero')) throw new Error(`gateway answered ${res.status} with ${JSON.stringify(ids)}`);
    return true;
  }, 30_000);

  const body = JSON.stringify({ model: 'tiny-lora', messages: [{ role: 'user', content: 'my card was charged twice' }], max_tokens: 4, temperature: 0 });
  const streamBody = JSON.stringify({ model: 'tiny-lora', messages: [{ role: 'user', content: 'my card was charged twice' }], max_tokens: 8, temperature: 0, stream: true });
  log(`warming up; then ${ROUNDS} rounds of ${REQUESTS} requests at ${CONCURRENCY} concurrent, direct and through the gateway`);
  await load(`${vllmUrl}/v1/chat/completions`, {}, body, CONCURRENCY, 500);
  await load(`${gw}/v1/chat/completions`, auth, body, CONCURRENCY, 500);
  const direct = [];
  const via = [];
  for (let i = 0; i < ROUNDS; i++) {
    direct.push(await load(`${vllmUrl}/v1/chat/completions`, {}, body, CONCURRENCY, REQUESTS));
    via.push(await load(`${gw}/v1/chat/completions`, auth, body, CONCURRENCY, REQUESTS));
    log(`round ${i + 1}: direct ${direct.at(-1).rps.toFixed(0)} req/s, gateway ${via.at(-1).rps.toFixed(0)} req/s`);
  }
  const med = (xs, f) => p50(xs.map(f));
  const [dRps, gRps, dP50, gP50] = [med(direct, (x) => x.rps), med(via, (x) => x.rps), med(direct, (x) => x.p50), med(via, (x) => x.p50)];

  const [tDirect, tVia] = [[], []];
  for (let i = 0; i < ROUNDS; i++) {
    tDirect.push(await ttfts(`${vllmUrl}/v1/chat/completions`, {}, streamBody, 200));
    tVia.push(await ttfts(`${gw}/v1/chat/completions`, auth, streamBody, 200));
  }

  const zeroBody = JSON.stringify({ model: 'zero', messages: [{ role: 'user', content: 'hello' }] });
  await load(`${gw}/v1/chat/completions`, auth, zeroBody, 16, 1000);
  const cpu0 = cpuSeconds(gateway.pid);
  const N = 10_000;
  await load(`${gw}/v1/chat/completions`, auth, zeroBody, 16, N);
  const usPerRequest = ((cpuSeconds(gateway.pid) - cpu0) / N) * 1e6;

  const rows = [
    ['', 'direct', 'gateway', 'figure', 'target'],
    [`non-streaming, ${CONCURRENCY} concurrent: req/s`, dRps.toFixed(0), gRps.toFixed(0), `ratio ${(gRps / dRps).toFixed(3)}`, '>= 0.9'],
    ['non-streaming: p50 latency (ms)', dP50.toFixed(2), gP50.toFixed(2), `added ${(gP50 - dP50).toFixed(2)} ms`, '<= 2 ms'],
    ['streaming: time to first token p50 (ms)', p50(tDirect).toFixed(2), p50(tVia).toFixed(2), `added ${(p50(tVia) - p50(tDirect)).toFixed(2)} ms`, '<= 2 ms'],
    ['gateway CPU per request, zero-latency upstream', '', '', `${usPerRequest.toFixed(0)} us`, 'aim <= 100 us'],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  console.log(`(load average during the run: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores)`);
  zero.close();
  code = 0;
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
} finally {
  await bench.close({ then: () => app?.close() });
  process.exit(code);
}
