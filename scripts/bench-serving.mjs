#!/usr/bin/env node
// npm run bench:serving [-- --rounds=N --replicas=N]
// Brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds, boots the real app (api + worker) and starts
// 1 + N serving replicas, each a tiny vLLM-compatible server process with the real adapter agent process beside it.
// Each round imports a NEW adapter version (new bytes, so every replica downloads, verifies and loads it) and rolls
// its alias out, alternately to a pool of one replica and to a pool of N; the time is from the rollout call until
// every replica's vLLM lists the alias at the new version. Prints p50 of both and the ratio (target <= 1.5x).
// All replicas share this machine (2 cores, one s3rver process), which real replicas do not: --load-ms (default 500)
// stands in for the time vLLM spends putting an adapter on the GPU; --load-ms=0 measures only the software path.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { prepareBench } from './lib/bench-app.mjs';
import { arg, fmt, freePort, log, p50, ROOT } from './lib/bench.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const ROUNDS = arg('rounds', 9);
const N = arg('replicas', 8);
// Time vLLM itself spends loading an adapter onto the GPU (tiny server: --load-delay-ms, a wait, not CPU work).
const LOAD_MS = arg('load-ms', 500);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const bench = await prepareBench({ log, prefix: 'bserve', overrides: { LOG_LEVEL: 'error' } });
const { env } = bench;

async function startReplica(name) {
  const [vp, ap] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${name}-`));
  const token = `bench-token-${name}-${randomBytes(8).toString('hex')}`;
  bench.spawnNode([path.join(ROOT, 'jobs/tiny-lora/server.js'), '--port', String(vp), '--enable-lora', '--max-loras', '4', '--max-lora-rank', '8', '--load-delay-ms', String(LOAD_MS)], { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' });
  bench.spawnNode([path.join(ROOT, 'adapters/agent/agent.js')], { ...process.env, AGENT_TOKEN: token, AGENT_HOST: '127.0.0.1', AGENT_PORT: String(ap), VLLM_URL: `http://127.0.0.1:${vp}`, ADAPTER_DIR: dir });
  const r = { name, dir, token, vllmUrl: `http://127.0.0.1:${vp}`, agentUrl: `http://127.0.0.1:${ap}` };
  for (const url of [`${r.vllmUrl}/health`, `${r.agentUrl}/healthz`]) {
    for (let i = 0; !(await fetch(url).then((x) => x.ok, () => false)); i++) {
      if (i > 400) throw new Error(`${name}: ${url} did not come up`);
      await sleep(25);
    }
  }
  return r;
}
async function aliasRoot(r, alias) {
  const body = await (await fetch(`${r.vllmUrl}/v1/models`)).json();
  return body.data.find((m) => m.id === alias)?.root ?? null;
}

let app;
let code = 1;
try {
  const require = createRequire(import.meta.url);
  const { servedName } = require(path.join(ROOT, 'dist/serving/served-name.js'));
  const { S3Client, PutObjectCommand } = require('@aws-sdk/client-s3');
  const { adapterFiles, examplesFromJsonl, train } = require(path.join(ROOT, 'jobs/tiny-lora/trainer.js'));
  app = await bench.startInProcess();
  const api = async (method, p, body) => {
    const res = await fetch(`${app.url}/v1${p}`, { method, headers: { ...bench.auth, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const s3 = new S3Client({ endpoint: env.S3_ENDPOINT, region: env.S3_REGION, forcePathStyle: true, credentials: { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY } });

  log(`starting ${1 + N} replicas (vLLM-compatible server + agent, each its own process)`);
  const replicas = await Promise.all(Array.from({ length: 1 + N }, (_, i) => startReplica(`r${i}`)));
  const pools = { one: { name: 'bench-one', replicas: replicas.slice(0, 1) }, many: { name: 'bench-many', replicas: replicas.slice(1) } };
  for (const p of Object.values(pools)) {
    await api('POST', '/serving/pools', { name: p.name, base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 });
    for (const r of p.replicas) await api('POST', `/serving/pools/${p.name}/replicas`, { name: r.name, vllm_url: r.vllmUrl, agent_url: r.agentUrl, agent_token: r.token });
  }
  const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `my package ${i} has not arrived` }, { role: 'assistant', content: i % 2 ? 'shipping' : 'billing' }] })).join('\n');
  const lora = { r: 8, alpha: 16, dropout: 0 };
  const files = adapterFiles(await train(examplesFromJsonl(lines), { seed: 1, n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora }), lora);

  /**
   * A new version of `adapter`: same weights, a config that differs by a field of no meaning to PEFT or vLLM, so its
   * bytes (and sha256) are new. (Not `revision`: PEFT's field for the base weights' revision, which the pool checks.)
   */
  async function newVersion(adapter, round) {
    const prefix = `imports/bench-serving/${adapter}/${round}-${randomBytes(4).toString('hex')}/`;
    for (const f of files) {
      const data = f.name === 'adapter_config.json' ? Buffer.from(JSON.stringify({ ...JSON.parse(f.data), bench_round: round })) : f.data;
      await s3.send(new PutObjectCommand({ Bucket: env.S3_BUCKET, Key: prefix + f.name, Body: data }));
    }
    return (await api('POST', `/adapters/${adapter}/versions/import`, { s3_prefix: `s3://${env.S3_BUCKET}/${prefix}` })).version;
  }
  async function rollout(pool, round) {
    const adapter = `bench-${pool === pools.one ? 'one' : 'many'}`;
    const version = await newVersion(adapter, round);
    const want = servedName(adapter, version);
    const t0 = performance.now();
    await api('POST', `/serving/pools/${pool.name}/aliases/${adapter}/rollout`, { version });
    const seen = new Map();
    for (;;) {
      const roots = await Promise.all(pool.replicas.map((r) => aliasRoot(r, adapter)));
      roots.forEach((root, i) => { if (root && root.endsWith(`/${want}`) && !seen.has(i)) seen.set(i, Math.round(performance.now() - t0)); });
      if (process.env.BENCH_DEBUG && roots.every((root) => root && root.endsWith(`/${want}`))) log(`${want}: ${[...seen.values()].join(' ')}`);
      if (roots.every((root) => root && root.endsWith(`/${want}`))) return performance.now() - t0;
      if (performance.now() - t0 > 60_000) throw new Error(`${want} not everywhere after 60 s: ${roots.join(', ')}`);
      await sleep(20);
    }
  }
  const one = [];
  const many = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const a = await rollout(pools.one, round);
    const b = await rollout(pools.many, round);
    if (round === 0) continue; // warm-up: first connections, first JIT
    one.push(a);
    many.push(b);
    log(`round ${round}: 1 replica ${a.toFixed(0)} ms, ${N} replicas ${b.toFixed(0)} ms`);
  }
  const ratio = p50(many) / p50(one);
  console.log(`rollout of a new adapter version (download + sha256 + load, alias re-pointed), ${ROUNDS} rounds each, rollout call -> served;`);
  console.log(`  replicas share this machine's ${os.cpus().length} cores; vLLM's own load time per adapter: ${LOAD_MS} ms (--load-ms)`);
  console.log(`  1 replica:  ${fmt(one)}`);
  console.log(`  ${N} replicas: ${fmt(many)}`);
  console.log(`  ratio: ${ratio.toFixed(2)}x (target <= 1.5x: ${ratio <= 1.5 ? 'met' : 'NOT met'})`);
  code = 0;
} catch (err) {
  console.error(`[bench] failed: ${err.stack ?? err}`);
} finally {
  await bench.close({ then: () => app?.close() });
}
process.exit(code);
