#!/usr/bin/env node
// npm run bench:gateway [-- --seconds=N --rounds=N --cpu-slices=4 --concurrency=64 --profile --pin]   (--seconds: per slice, see measure)
// Brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds, boots the control plane (api + worker) in this
// process and two gateway processes (dist/main.js, LORAPLANE_ROLE=gateway), with one tiny vLLM-compatible replica
// and its agent:
//   off: GATEWAY_RECORD_USAGE=false, called with a key without limits (no usage, metrics or per-adapter figures,
//        no Redis round trip);
//   on:  everything recorded, called with a key that has rpm and tpm limits (every request is checked: against this
//        gateway's allowance, taken from Redis about once a second; local-allowance.ts).
// Each round runs direct / off / on there and back (an order that rotates, then the same reversed), and the figures
// compare the sides within each round before taking the median over rounds, so the machine's drift cancels out.
// The load comes from wrk (scripts/lib/wrk-load.mjs says why), whose CPU per request is printed too. Prints, side
// by side in one run:
//  1. 64 concurrent non-streaming chat completions: throughput ratio vs direct (target >= 0.9) and added p50
//     latency (target <= 2 ms);
//  2. streaming time to first token p50 and what each gateway adds (target <= 2 ms);
//  3. each gateway process's own CPU time per request against a zero-latency upstream (aim <= 100 us), all its
//     threads, in --cpu-slices slices of 2 s a round with four gateways under load at the same time (see
//     cpuPerRequest): off, on, a third started like "on" and called with the key without limits (what recording
//     costs apart from the limits), a fourth started exactly like "off" (A/A: how far two identical gateways differ
//     here, the figures' noise). "on" and the third take turns with the limited key, slice by slice (crossover: two
//     processes started alike still differ by several percent for as long as they run, and that difference would
//     otherwise be read as the limits' cost); each figure is the median over pairs of slices of one key against
//     "off" in the same slices, printed with its quartiles;
//  and how much worse "on" is than "off" (issue 13: at most 5 %).
// --profile: every gateway runs under --cpu-prof (so all four pay the profiler alike); the profiles of "off" and "on"
// are summarised (scripts/lib/cpu-profile.mjs), and the CPU per request of each is split into parts (limits, recording, the response head, socket writes, the
// collector, the rest) side by side: where the difference between "off" and "on" goes.
// Everything shares this machine's cores (load generator, gateways, replica), which production does not: there the
// model server is bound by its GPU and the gateway runs on CPUs of its own. --pin places them that way here: the
// replica alone on CPU 0, everything else (load generator, control plane, agent, gateways) on CPU 1 (taskset), so
// the ratio shows whether the gateway costs the replica any capacity when it does not take the replica's CPU.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { prepareBench, until } from './lib/bench-app.mjs';
import { arg, cpuPerRequestAtOnce, freePort, log, p50, ROOT } from './lib/bench.mjs';
import { ensureWrk, wrkLoad } from './lib/wrk-load.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const SECONDS = arg('seconds', 1);
const ROUNDS = arg('rounds', 5);
if (!Number.isInteger(SECONDS) || SECONDS < 1) throw new Error('--seconds: whole seconds (wrk -d takes no fractions)');
const CONCURRENCY = arg('concurrency', 64);
/** CPU slices (2 s each) per round. */
const CPU_SLICES = arg('cpu-slices', 4);
if (!Number.isInteger(CPU_SLICES) || CPU_SLICES < 2 || CPU_SLICES % 2 !== 0) throw new Error('--cpu-slices: an even number (the two gateways started alike take turns with the limited key)');
const PROFILE = process.argv.includes('--profile');
const PIN = process.argv.includes('--pin');
if (PIN && os.cpus().length < 2) throw new Error('--pin needs at least 2 CPUs');

/** --pin: every thread of `pid` onto `cpu` (util-linux taskset). */
function pin(pid, cpu) {
  if (PIN) execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** Requests sent to each base URL over the whole run (--profile: the profiles' figures per request). */
const sent = new Map();
const count = (url, n) => {
  const base = new URL(url).origin;
  sent.set(base, (sent.get(base) ?? 0) + n);
};

/** `seconds` of load at `concurrency` from wrk (on CPU 1 under --pin): { rps, p50, requests, cpuUs }. */
async function load(url, headers, body, concurrency, seconds) {
  const r = await wrkLoad({ url, headers, body, concurrency, seconds }, { cpu: PIN ? 1 : null });
  count(url, r.requests);
  return r;
}

/** `n` sequential streaming requests over one keep-alive connection: their times to the first token. */
async function ttfts(url, headers, body, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await request(agent, url, headers, body, { ttft: true }));
  agent.destroy();
  count(url, n);
  return xs;
}

/**
 * CPU per request (us) of each gateway against the zero-latency upstream: every gateway under load at the same time
 * (16 connections each, for `seconds`), so the machine's speed, which swings by 20-30 % from
 * one second to the next, is the same for all of them; one after the other, the comparison measured mostly the
 * swings.
 */
function cpuPerRequest(gateways, body, seconds, first = 0) {
  return cpuPerRequestAtOnce(gateways, first, (gw) => load(`${gw.url}/v1/chat/completions`, gw.auth, body, 16, seconds));
}

/** Stops a gateway with SIGTERM (a graceful stop writes its --cpu-prof file) and waits for it to exit. */
async function stopGracefully(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
}

/** --profile: the parts of a gateway's work its CPU per request is split into (cpu-profile.mjs partsPerRequest). */
const inFile = (...files) => (frame) => files.some((f) => frame.url.endsWith(`/dist/${f}`));
const GATEWAY_PARTS = {
  'limits: admission, settlement, their Redis calls': inFile('gateway/gateway-admission.js', 'limits/rate-limiter.js', 'limits/local-allowance.js', 'limits/rate-limits.js'),
  'recording: usage, metrics, per-adapter figures': inFile('gateway/operations.observer.js', 'usage/usage-meter.js', 'serving/adapter-stats.js', 'metrics/gateway-series.js', 'metrics/series-histogram.js'),
  'response head: node checks each header, spells the head': (frame) => frame.functionName === 'writeHead' && frame.url.endsWith('/dist/gateway/response-head.js'),
  'socket writes (their kernel time included)': (frame) => frame.url === '' && /^(writev|writeUtf8String|writeLatin1String|writeAsciiString|writeBuffer)$/.test(frame.functionName),
};

function printTable(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
}

const bench = await prepareBench({ log, prefix: 'bgw', overrides: { RECONCILE_INTERVAL_MS: '1000' } });
await ensureWrk(log);
const { appEnv, auth } = bench;
const profileDir = PROFILE ? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gw-profile-')) : null;
let app;
let code = 1;
try {
  app = await bench.startInProcess();
  const call = (method, route, body) => fetch(`${app.url}/v1${route}`, { method, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const api = (route, body) => call('POST', route, body);

  // The replica: the tiny server and its agent, as production runs them.
  const [vp, ap] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gw-'));
  const token = `bench-token-${randomBytes(8).toString('hex')}`;
  const vllmUrl = `http://127.0.0.1:${vp}`;
  pin(process.pid, 1);
  pin(bench.spawnNode([path.join(ROOT, 'jobs/tiny-lora/server.js'), '--port', String(vp), '--enable-lora', '--max-loras', '4', '--max-lora-rank', '8'], { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' }).pid, 0);
  pin(bench.spawnNode([path.join(ROOT, 'adapters/agent/agent.js')], { ...process.env, AGENT_TOKEN: token, AGENT_HOST: '127.0.0.1', AGENT_PORT: String(ap), VLLM_URL: vllmUrl, ADAPTER_DIR: dir }).pid, 1);
  await until('the replica', () => fetch(`${vllmUrl}/health`).then((r) => r.ok));
  await until('the agent', () => fetch(`http://127.0.0.1:${ap}/healthz`).then((r) => r.ok));
  await api('/serving/pools', { name: 'bench', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 });
  await api('/serving/pools/bench/replicas', { name: 'r0', vllm_url: vllmUrl, agent_url: `http://127.0.0.1:${ap}`, agent_token: token });

  // The "on" key: limits high enough never to refuse, so every request is checked and answered with x-ratelimit-*
  // headers. The bootstrap key (and its project) has none: the "off" gateway checks nothing.
  const limited = await (await api('/api_keys', { name: 'bench limited' })).json();
  await call('PUT', `/api_keys/${limited.id}/rate_limits`, { rpm: 1e9, tpm: 1e9 });
  const authOn = { authorization: `Bearer ${limited.value}` };

  // A zero-latency upstream (canned answer at once) for the gateway's own CPU cost, as a provider model.
  const canned = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'zero', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } });
  const zero = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(canned) }).end(canned));
  });
  await new Promise((r) => zero.listen(0, '127.0.0.1', r));
  await api('/provider_models', { name: 'zero', base_url: `http://127.0.0.1:${zero.address().port}/v1` });

  const startGateway = async (name, extraEnv, headers) => {
    const port = await freePort();
    const args = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`] : [];
    const child = bench.spawnNode([path.join(ROOT, 'dist/main.js')], { ...appEnv, ...extraEnv, LORAPLANE_ROLE: 'gateway', PORT: String(port) }, { nodeArgs: args });
    pin(child.pid, 1);
    return { name, child, url: `http://127.0.0.1:${port}`, auth: headers, spawnedAt: performance.now() };
  };
  const off = await startGateway('off', { GATEWAY_RECORD_USAGE: 'false' }, auth);
  const on = await startGateway('on', {}, authOn);
  // Two more for the CPU figures only: "on" as it is called with the key without limits (what recording costs apart
  // from the limits), and one started exactly like "off" (the A/A line).
  const recording = await startGateway('recording', {}, auth);
  const twin = await startGateway('off-twin', { GATEWAY_RECORD_USAGE: 'false' }, auth);
  await until('the replica to be ready', async () => (await (await fetch(`${app.url}/v1/serving/pools/bench`, { headers: auth })).json()).replicas[0].status === 'ready', 30_000);
  for (const gw of [off, on, recording, twin]) {
    await until(`gateway ${gw.name} to route tiny-lora and zero`, async () => {
      const res = await fetch(`${gw.url}/v1/models`, { headers: gw.auth });
      const ids = (await res.json()).data?.map((m) => m.id) ?? [];
      if (!ids.includes('tiny-lora') || !ids.includes('zero')) throw new Error(`gateway answered ${res.status} with ${JSON.stringify(ids)}`);
      return true;
    }, 30_000);
  }

  const measuredFrom = performance.now();
  const figures = summarise(await measure(vllmUrl, [off, on], [recording, twin]));
  const f = (x, d = 2) => x.toFixed(d);
  const pct = (x) => `${f(x, 1)} %`;
  const [d, o, n, vs] = [figures.direct, figures.off, figures.on, figures.onVsOff];
  console.log(`medians over ${ROUNDS} rounds; the figures compare each round's sides, then take the median (see measure)`);
  printTable([
    ['', 'direct', 'gw off', 'gw on', 'off: figure', 'on: figure', 'target', 'on vs off (<= 5 % worse)'],
    [`non-streaming, ${CONCURRENCY} concurrent: req/s`, f(d.rps, 0), f(o.rps, 0), f(n.rps, 0), `ratio ${f(o.ratio, 3)}`, `ratio ${f(n.ratio, 3)}`, '>= 0.9', pct(vs.rps)],
    ['non-streaming: p50 latency (ms)', f(d.p50), f(o.p50), f(n.p50), `added ${f(o.addedP50)} ms`, `added ${f(n.addedP50)} ms`, '<= 2 ms', pct(vs.p50)],
    ['streaming: time to first token p50 (ms)', f(d.ttft), f(o.ttft), f(n.ttft), `added ${f(o.addedTtft)} ms`, `added ${f(n.addedTtft)} ms`, '<= 2 ms', pct(vs.ttft)],
    ['gateway CPU per request, zero-latency upstream', '', '', '', `${f(o.cpuUs, 0)} us`, `${f(n.cpuUs, 0)} us`, 'aim <= 100 us', pct(vs.cpu)],
  ]);
  const cpuSpread = spreadOf(percentWorseByPairs(figures.runs.on.cpu, figures.runs.off.cpu));
  const cpu = (name) => figures.runs[name].cpu;
  const bareSpread = spreadOf(percentWorseByPairs(cpu('recording'), cpu('off')));
  console.log(`CPU on vs off over ${cpuSpread.n} pairs of slices (${PROFILE ? 'no crossover under --profile' : 'crossover, see measure'}): median ${f(cpuSpread.median, 1)} %, quartiles ${f(cpuSpread.q1, 1)} / ${f(cpuSpread.q3, 1)} %, min ${f(cpuSpread.min, 1)}, max ${f(cpuSpread.max, 1)}`);
  console.log(`gateway CPU per request, "on" as called with the key without limits (recording only): ${f(p50(cpu('recording')), 0)} us, ${pct(bareSpread.median)} worse than off (quartiles ${f(bareSpread.q1, 1)} / ${f(bareSpread.q3, 1)} %)`);
  const aa = spreadOf(percentWorse(cpu('off-twin'), cpu('off')));
  console.log(`A/A, "off" against a second gateway started exactly like it: ${pct(aa.median)} (quartiles ${f(aa.q1, 1)} / ${f(aa.q3, 1)} %): differences of this size are this machine's noise`);
  console.log(`load generator (wrk, one thread): ${[d, o, n].map((x) => f(x.loadCpuUs, 0)).join(' / ')} us of CPU per request (direct / off / on)`);
  console.log('off: GATEWAY_RECORD_USAGE=false, a key without limits. on: usage, metrics and per-adapter figures recorded, a key with rpm+tpm limits.');
  console.log(`(load average during the run: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores)`);
  console.log(PIN ? 'pinned: the replica alone on CPU 0; load generator, control plane, agent and gateways on CPU 1' : 'shared: every process on every core (--pin gives the replica a CPU of its own)');
  if (PROFILE) {
    await Promise.all([off, on].map((gw) => stopGracefully(gw.child)));
    const { partsPerRequest, summarize } = await import('./lib/cpu-profile.mjs');
    const parts = {};
    for (const gw of [off, on]) {
      const folder = path.join(profileDir, gw.name);
      for (const file of fs.readdirSync(folder)) {
        const profile = JSON.parse(fs.readFileSync(path.join(folder, file), 'utf8'));
        const skipMs = measuredFrom - gw.spawnedAt;
        console.log(`\nprofile of gateway ${gw.name} (its start-up left out): ${path.join(folder, file)}\n${summarize(profile, { skipMs })}`);
        parts[gw.name] = partsPerRequest(profile, GATEWAY_PARTS, sent.get(gw.url), { skipMs });
      }
    }
    console.log(`\nwhere "on" spends more than "off": each part's CPU per request (us, from the profiles: ${sent.get(off.url)} / ${sent.get(on.url)} requests, every load of the run)`);
    printTable([['', 'off', 'on', 'on - off'], ...Object.keys(parts.on).map((k) => [k, f(parts.off[k], 2), f(parts.on[k], 2), f(parts.on[k] - parts.off[k], 2)])]);
  }
  zero.close();
  code = 0;
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  log(`what the spawned processes logged last:\n${bench.logTail()}`);
} finally {
  await bench.close({ then: () => app?.close() });
  process.exit(code);
}

/**
 * Direct and each gateway, round after round. A round runs every side for one slice of SECONDS in an order that
 * rotates each round (no side always first or last), then again in the reverse order (A B C C B A), and the same
 * for the TTFTs (100 streams per side each way). The machine's speed drifts by up to 2x within minutes and by
 * 10-20 % from one second to the next (the tiny server alone, 1 s slices: 3,800-5,400 req/s); there-and-back
 * gives every side the same average position in the round, so a steady drift cancels. Each round's figures are
 * compared within the round (a gateway's throughput over direct's, its p50 and TTFT minus direct's, "on" over
 * "off"). Printed: the medians of the per-round comparisons, and beside them each side's median.
 */
async function measure(vllmUrl, gateways, others) {
  const body = JSON.stringify({ model: 'tiny-lora', messages: [{ role: 'user', content: 'my card was charged twice' }], max_tokens: 4, temperature: 0 });
  const streamBody = JSON.stringify({ model: 'tiny-lora', messages: [{ role: 'user', content: 'my card was charged twice' }], max_tokens: 8, temperature: 0, stream: true });
  const zeroBody = JSON.stringify({ model: 'zero', messages: [{ role: 'user', content: 'hello' }] });
  const direct = { url: vllmUrl, auth: {}, name: 'direct' };
  const all = [direct, ...gateways];
  const measured = [...gateways, ...others];
  const runs = Object.fromEntries([...all, ...others].map((t) => [t.name, { loads: [], ttfts: [], cpu: [] }]));
  log(`warming up; then ${ROUNDS} rounds of 2 x ${SECONDS} s at ${CONCURRENCY} concurrent, direct and through each gateway`);
  // Long enough for V8 to have optimised the hot path (the CPU per request still fell round by round after 1,500
  // requests); a few seconds here are some 10,000.
  // Every gateway is warmed up alike: with less warm-up the A/A twin's code was less optimised and it read 3-6 %.
  for (const t of [...all, ...others]) await load(`${t.url}/v1/chat/completions`, t.auth, body, CONCURRENCY, 3);
  for (const gw of measured) await load(`${gw.url}/v1/chat/completions`, gw.auth, zeroBody, 16, 2);
  // The two started alike take turns with the limited key (below): each warmed with the other's key too.
  const [off, on, recording, twin] = measured;
  await load(`${on.url}/v1/chat/completions`, recording.auth, zeroBody, 16, 2);
  await load(`${recording.url}/v1/chat/completions`, on.auth, zeroBody, 16, 2);
  let slice = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const order = [...all.slice(i % all.length), ...all.slice(0, i % all.length)];
    const slices = Object.fromEntries(all.map((t) => [t.name, []]));
    for (const t of [...order, ...[...order].reverse()]) {
      slices[t.name].push(await load(`${t.url}/v1/chat/completions`, t.auth, body, CONCURRENCY, SECONDS).catch((err) => Promise.reject(new Error(`${t.name}: ${err.message}`))));
    }
    for (const t of all) runs[t.name].loads[i] = pooled(slices[t.name]);
    log(`round ${i + 1}: ${all.map((t) => `${t.name} ${runs[t.name].loads[i].rps.toFixed(0)} req/s`).join(', ')}`);
    const firsts = Object.fromEntries(all.map((t) => [t.name, []]));
    for (const t of [...order, ...[...order].reverse()]) firsts[t.name].push(...(await ttfts(`${t.url}/v1/chat/completions`, t.auth, streamBody, 100)));
    for (const t of all) runs[t.name].ttfts[i] = p50(firsts[t.name]);
    // The CPU figures: all four gateways under load at once in every slice, none idle while another works. (Measured
    // in pairs, "off" was in every pair and worked three times as long as the others between their slices; the A/A
    // line read 1-10 %, never below zero.) A slice first, not counted, so that none starts from idle after the
    // throughput rounds; then several short ones: one slice's comparison swings by a few points (the machine), the
    // median of 15-20 holds still where that of 5 did not (it moved by 5-8 points between runs).
    // Crossover: in every other slice the processes of "on" and "recording" swap keys, so each key's figure comes
    // from both processes alike (two processes started alike differ by up to several percent for as long as they
    // run: the swap cancels that out of the limits' figure). The series are kept by key: runs.on.cpu is the CPU of
    // whichever process had the limited key in that slice.
    await cpuPerRequest(measured, zeroBody, 1, i);
    for (let s = 0; s < CPU_SLICES; s++) {
      // (Not under --profile: there the profile of "on" is to show the limited key's path alone.)
      const swapped = !PROFILE && slice % 2 === 1;
      const targets = swapped ? [off, { ...on, auth: recording.auth }, { ...recording, auth: on.auth }, twin] : measured;
      const [xOff, xOn, xRecording, xTwin] = await cpuPerRequest(targets, zeroBody, 2, slice++);
      runs[off.name].cpu.push(xOff);
      runs[on.name].cpu.push(swapped ? xRecording : xOn);
      runs[recording.name].cpu.push(swapped ? xOn : xRecording);
      runs[twin.name].cpu.push(xTwin);
    }
    log(`round ${i + 1}: CPU per request ${measured.map((gw) => `${gw.name} ${runs[gw.name].cpu.slice(-CPU_SLICES).map((x) => x.toFixed(0)).join('/')} us`).join(', ')} (on, recording: by key)`);
  }
  return runs;
}

/**
 * A side's slices of one round as one load: requests over the time they took, p50 and the load generator's CPU
 * weighted by requests (a p50 of p50s, close enough for slices of equal length).
 */
function pooled(slices) {
  const requests = slices.reduce((n, x) => n + x.requests, 0);
  const seconds = slices.reduce((n, x) => n + x.requests / x.rps, 0);
  const weighted = (k) => slices.reduce((n, x) => n + x[k] * x.requests, 0) / requests;
  return { rps: requests / seconds, p50: weighted('p50'), requests, cpuUs: weighted('cpuUs') };
}

/** Slice by slice, how much worse (in percent) `on` is than `off`. */
function percentWorse(on, off) {
  return on.map((x, i) => (x / off[i] - 1) * 100);
}

/**
 * The same by pairs of slices (the two turns of the crossover, see measure): the geometric mean of the pair's two
 * ratios, in which a constant difference between the two processes that took turns cancels out.
 */
function percentWorseByPairs(on, off) {
  const out = [];
  for (let i = 0; i + 1 < on.length; i += 2) out.push((Math.sqrt((on[i] / off[i]) * (on[i + 1] / off[i + 1])) - 1) * 100);
  return out;
}

/** Median, quartiles and extremes of `xs`. */
function spreadOf(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: p50(s), q1: at(0.25), q3: at(0.75), min: s[0], max: s.at(-1) };
}

/** The medians of each side, and of the per-round comparisons (see measure). */
function summarise(runs) {
  const med = (xs) => p50(xs);
  const side = (r) => ({ rps: med(r.loads.map((x) => x.rps)), p50: med(r.loads.map((x) => x.p50)), ttft: med(r.ttfts), cpuUs: r.cpu.length ? med(r.cpu) : NaN, loadCpuUs: med(r.loads.map((x) => x.cpuUs)) });
  const rounds = runs.direct.loads.map((_, i) => i);
  const paired = (a, b, fn) => med(rounds.map((i) => fn(a, b, i)));
  const vsDirect = (gw) => ({
    ratio: paired(runs[gw], runs.direct, (g, d, i) => g.loads[i].rps / d.loads[i].rps),
    addedP50: paired(runs[gw], runs.direct, (g, d, i) => g.loads[i].p50 - d.loads[i].p50),
    addedTtft: paired(runs[gw], runs.direct, (g, d, i) => g.ttfts[i] - d.ttfts[i]),
  });
  // "on" against "off", in percent worse (positive: on is worse).
  const onVsOff = {
    rps: paired(runs.on, runs.off, (n, o, i) => (o.loads[i].rps / n.loads[i].rps - 1) * 100),
    p50: paired(runs.on, runs.off, (n, o, i) => (n.loads[i].p50 / o.loads[i].p50 - 1) * 100),
    ttft: paired(runs.on, runs.off, (n, o, i) => (n.ttfts[i] / o.ttfts[i] - 1) * 100),
    cpu: med(percentWorseByPairs(runs.on.cpu, runs.off.cpu)),
  };
  return { runs, direct: side(runs.direct), off: { ...side(runs.off), ...vsDirect('off') }, on: { ...side(runs.on), ...vsDirect('on') }, onVsOff };
}
