#!/usr/bin/env node
// npm run bench:evals [-- --items=N --concurrency=N --delay-ms=N --rounds=N]
// Brings up the test stack (LORAPLANE_TEST_SLOT picks which), builds, boots the real app (api + worker, one
// process) and a tiny vLLM-compatible server (jobs/tiny-lora/server.js --delay-ms, so each call takes ~20 ms), then
// compares, alternating, in rounds:
//  - direct: the same N chat completions sent with fetch at the same concurrency, answers parsed (the floor);
//  - the eval runner: a run of an N-item suite against a target on that server (load the suite from S3, call,
//    score, record every result in Postgres, settle the run), timed from the run's startedAt to finishedAt (ms,
//    from Postgres), and end to end (POST /v1/evals/runs -> status succeeded seen by polling every 10 ms).
// Prints the medians and the ratio runner / direct (target: < 1.05, i.e. the runner adds under 5%).
import path from 'node:path';
import { createRequire } from 'node:module';
import { prepareBench } from './lib/bench-app.mjs';
import { arg, freePort, log, ROOT } from './lib/bench.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const ITEMS = arg('items', 2000);
const CONCURRENCY = arg('concurrency', 8);
const DELAY_MS = arg('delay-ms', 20);
const ROUNDS = arg('rounds', 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const bench = await prepareBench({ log, prefix: 'bevals', overrides: { LOG_LEVEL: 'error' } });
let app;
let code = 1;
try {
  const require = createRequire(import.meta.url);
  const { PrismaService } = require(path.join(ROOT, 'dist/db/prisma.service.js'));

  const port = await freePort();
  bench.spawnNode([path.join(ROOT, 'jobs/tiny-lora/server.js'), '--port', String(port), '--delay-ms', String(DELAY_MS)], process.env);
  const baseUrl = `http://127.0.0.1:${port}/v1`;
  for (let i = 0; i < 200; i++) {
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 25));
  }

  app = await bench.startInProcess();
  const prisma = app.app.get(PrismaService);
  const api = async (method, p, body) => {
    const res = await fetch(`${app.url}${p}`, {
      method,
      headers: { ...bench.auth, ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}) },
      body,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  const labels = ['billing', 'shipping', 'technical', 'account'];
  const items = Array.from({ length: ITEMS }, (_, i) => ({ prompt: `ticket ${i}: my ${['invoice', 'parcel', 'app', 'password'][i % 4]} has a problem`, reference: labels[i % 4] }));
  const form = new FormData();
  form.append('file', new Blob([items.map((x) => JSON.stringify(x)).join('\n')]), 'bench-eval.jsonl');
  const file = await api('POST', '/v1/datasets?format=eval&purpose=evals', form);
  const suite = await api('POST', '/v1/evals/suites', JSON.stringify({ name: 'bench', dataset_id: file.id, scorer: 'exact_match' }));
  await api('POST', '/v1/evals/targets', JSON.stringify({ name: 'tiny', kind: 'api', base_url: baseUrl, model: 'tiny-lora', concurrency: CONCURRENCY, max_tokens: 16 }));

  // What the runner sends, sent directly: the same body, the same concurrency, every answer read.
  const direct = async () => {
    let next = 0;
    const t0 = performance.now();
    const slot = async () => {
      while (next < items.length) {
        const item = items[next++];
        const res = await fetch(`${baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'tiny-lora', messages: [{ role: 'user', content: item.prompt }], max_tokens: 16, temperature: 0 }),
        });
        if (!res.ok) throw new Error(`direct call: ${res.status}`);
        await res.json();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, slot));
    return performance.now() - t0;
  };
  const viaRunner = async () => {
    const t0 = performance.now();
    const created = await api('POST', '/v1/evals/runs', JSON.stringify({ suite_id: suite.id, targets: ['tiny'] }));
    for (;;) {
      const r = await api('GET', `/v1/evals/runs/${created.id}`);
      if (r.status === 'succeeded') break;
      if (r.status !== 'queued' && r.status !== 'running') throw new Error(`run ${created.id} ended ${r.status}: ${JSON.stringify(r.error)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const endToEnd = performance.now() - t0;
    const row = await prisma.evalRun.findUniqueOrThrow({ where: { id: created.id } });
    const results = await prisma.evalResult.count({ where: { runId: created.id } });
    if (results !== ITEMS) throw new Error(`run ${created.id} recorded ${results} results, not ${ITEMS}`);
    return { span: row.finishedAt.getTime() - row.startedAt.getTime(), endToEnd };
  };

  log(`${ITEMS} items, concurrency ${CONCURRENCY}, server delay ${DELAY_MS} ms; warm-up, then ${ROUNDS} rounds alternating`);
  await direct();
  await viaRunner();
  const d = [];
  const spans = [];
  const e2e = [];
  for (let i = 0; i < ROUNDS; i++) {
    d.push(await direct());
    const r = await viaRunner();
    spans.push(r.span);
    e2e.push(r.endToEnd);
    log(`round ${i + 1}: direct ${d.at(-1).toFixed(0)} ms, runner ${r.span} ms (end to end ${r.endToEnd.toFixed(0)} ms)`);
  }
  const ratio = median(spans) / median(d);
  const ratioE2e = median(e2e) / median(d);
  console.log(`eval runner vs direct calls (${ITEMS} items, concurrency ${CONCURRENCY}, ~${DELAY_MS} ms per call, median of ${ROUNDS}):`);
  console.log(`  direct fetch at the same concurrency:                 ${median(d).toFixed(0)} ms`);
  console.log(`  runner (startedAt -> finishedAt: load, call, score, record, settle): ${median(spans).toFixed(0)} ms`);
  console.log(`  end to end (POST /v1/evals/runs -> succeeded, polled every 100 ms):   ${median(e2e).toFixed(0)} ms`);
  console.log(`  ratio runner / direct: ${ratio.toFixed(3)} (+${((ratio - 1) * 100).toFixed(1)}%; target < +5%: ${ratio < 1.05 ? 'met' : 'NOT met'}); end to end: ${ratioE2e.toFixed(3)}`);
  code = 0;
} catch (err) {
  console.error(`[bench] failed: ${err.stack ?? err}`);
} finally {
  await bench.close({ then: () => app?.close() });
}
process.exit(code);
