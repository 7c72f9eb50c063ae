import { randomBytes } from 'node:crypto';
import { adapterFiles, examplesFromJsonl, initLora, train } from '../../jobs/tiny-lora/trainer';
import { SecretBox } from '../../src/common/secret-box';
import { PrismaService } from '../../src/db/prisma.service';
import { itemDiffs } from '../../src/evals/report';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';
import { loadedOn, startReplica, stopAllReplicas, TestReplica } from '../support/replicas';
import { seedAdapterVersion } from '../support/seed-adapter';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Evals end to end: the app (api + worker) runs a suite of held-out tickets against a tiny pool's base model, real
 * adapters on it (a trained one and PEFT's no-op initialisation), and o3-mini/o4-mini on the OpenAI stand-in (with a
 * 429 + Retry-After). Accuracy, latency, tokens, cost, the report in three formats, the promotion gate, and a run
 * interrupted by stopping the app and finished by the next one without losing or repeating an item.
 */
describe('evals (e2e)', () => {
  jest.setTimeout(90_000);
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 300, nHeldOut: 40, seed: 23 });
  const N = heldOut.length;
  const openaiKey = `sk-standin-${randomBytes(12).toString('hex')}`;
  /** The stand-in's "models": o4-mini right except on every 5th ticket, o3-mini except on every 3rd. */
  const truth = new Map(heldOut.map((e, i) => [e.messages[1].content as string, { label: e.label as string, i }]));
  const answer = (model: string, messages: { role: string; content: unknown }[]) => {
    const t = truth.get(String(messages.find((m) => m.role === 'user')?.content));
    if (!t) return 'unknown';
    const wrong = model === 'o4-mini' ? t.i % 5 === 0 : model === 'o3-mini' ? t.i % 3 === 0 : false;
    return wrong ? (t.label === 'billing' ? 'shipping' : 'billing') : t.label;
  };
  let app: TestApp;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;
  let openai: OpenAIStandIn;
  let replica: TestReplica;
  let suiteId: string;
  let mainRun: any;

  const api = apiClient(() => ({ url: app.url, key }));
  const finished = (id: string, timeoutMs = 60_000) =>
    waitFor(`run ${id} to finish`, async () => {
      const r = (await api('GET', `/evals/runs/${id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : null;
    }, timeoutMs, 100);
  const allResults = async (runId: string) => (await api('GET', `/evals/runs/${runId}/results?limit=500`)).body.data as any[];

  const seedVersion = (adapter: string, files: { name: string; data: Buffer }[]) => seedAdapterVersion({ prisma, s3, bucket, projectId }, adapter, files);

  beforeAll(async () => {
    openai = await startOpenAIStandIn({ apiKey: openaiKey, answer, reasoningTokens: 48 });
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '300', AGENT_TIMEOUT_MS: '3000', EVAL_RETRY_BASE_MS: '50' });
    prisma = app.started.app.get(PrismaService);
    const created = (await api('POST', '/admin/projects', { name: 'evals e2e' }, app.apiKey)).body;
    key = created.api_key.value;
    projectId = created.id;
    replica = await startReplica('ev0');
    const lora = { r: 8, alpha: 16, dropout: 0 };
    const good = adapterFiles(await train(examplesFromJsonl(trainJsonl), { seed: 1, n_epochs: 4, batch_size: 8, learning_rate: 0.05, lora }), lora);
    await seedVersion('tickets', good);
    // PEFT's initialisation (B = 0): it answers exactly like the base model.
    const noop = adapterFiles({ ...initLora(lora.r, 4), r: lora.r, alpha: lora.alpha, scale: lora.alpha / lora.r } as never, lora);
    await seedVersion('tickets', noop);
    expect((await api('POST', '/serving/pools', { name: 'evals-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/evals-pool/replicas', { name: 'ev0', vllm_url: replica.vllmUrl, agent_url: replica.agentUrl, agent_token: replica.token })).status).toBe(201);
    for (const version of [1, 2]) expect((await api('POST', '/serving/pools/evals-pool/deployments', { adapter: 'tickets', version })).status).toBe(201);
    await waitFor('both versions loaded', async () => {
      const m = await loadedOn(replica);
      return m.has('tickets@v1') && m.has('tickets@v2');
    }, 20_000, 100);
    await waitFor('replica ready', async () => (await api('GET', '/serving/pools/evals-pool')).body.replicas[0].status === 'ready', 10_000, 100);
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
    await openai?.close();
  });

  it('creates targets of every kind; provider keys are sealed at rest and never returned', async () => {
    const apiTarget = (name: string, model: string, extra: object = {}) => api('POST', '/evals/targets', { name, kind: 'api', base_url: openai.url, api_key: openaiKey, model, concurrency: 4, ...extra });
    const o3 = await apiTarget('o3-mini', 'o3-mini');
    expect(o3.status).toBe(201);
    expect(o3.body).toMatchObject({ kind: 'api', model: 'o3-mini', reasoning: true, temperature: null, has_api_key: true, stream: false });
    expect((await apiTarget('o4-mini', 'o4-mini', { stream: true })).status).toBe(201);
    expect(o3.text).not.toContain(openaiKey);
    const listed = await api('GET', '/evals/targets');
    expect(listed.text).not.toContain(openaiKey);
    const row = await prisma.evalTarget.findFirstOrThrow({ where: { projectId, name: 'o3-mini' } });
    expect(row.apiKeySealed).not.toContain(openaiKey);
    expect(app.started.app.get(SecretBox).open(row.apiKeySealed!, { purpose: 'eval_target.api_key', id: row.id })).toBe(openaiKey);

    const pool = { pool: 'evals-pool', concurrency: 4, usd_per_gpu_hour: 2.5, gpus: 1 };
    expect((await api('POST', '/evals/targets', { name: 'base', kind: 'base', stream: true, ...pool })).body).toMatchObject({ model: 'tiny-lora', pool: 'evals-pool', reasoning: false, temperature: 0 });
    expect((await api('POST', '/evals/targets', { name: 'tickets-v1', kind: 'adapter', adapter: 'tickets', version: 1, ...pool })).body.model).toBe('tickets@v1');
    expect((await api('POST', '/evals/targets', { name: 'tickets-v2', kind: 'adapter', adapter: 'tickets', version: 2, ...pool })).status).toBe(201);

    const temp = await apiTarget('bad', 'o3-mini', { temperature: 0.5 });
    expect(temp.status).toBe(400);
    expect(temp.body.error.param).toBe('temperature');
    expect((await api('POST', '/evals/targets', { name: 'ghost', kind: 'adapter', pool: 'evals-pool', adapter: 'nope' })).status).toBe(404);
    expect((await api('POST', '/evals/targets', { name: 'base', kind: 'base', pool: 'evals-pool' })).body.error.param).toBe('name');
  });

  it('makes a suite of an eval-format dataset and refuses a scorer its items cannot satisfy, naming the item', async () => {
    const lines = heldOut.map((e) => JSON.stringify({ prompt: e.messages.slice(0, 2), reference: e.label })).join('\n');
    const form = new FormData();
    form.append('file', new Blob([lines]), 'tickets-eval.jsonl');
    const up = await fetch(`${app.url}/v1/datasets?format=eval&purpose=evals`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    const file = (await up.json()) as any;
    expect(file.status).toBe('ready');
    const numeric = await api('POST', '/evals/suites', { name: 'tickets-num', dataset_id: file.id, scorer: 'numeric' });
    expect(numeric.status).toBe(400);
    expect(numeric.body.error).toMatchObject({ param: 'scorer' });
    expect(numeric.body.error.message).toMatch(/^item 0 \(line 1\): the numeric scorer found no number/);
    const suite = await api('POST', '/evals/suites', { name: 'tickets', dataset_id: file.id, scorer: 'exact_match' });
    expect(suite.status).toBe(201);
    expect(suite.body).toMatchObject({ items: N, scorer: { type: 'exact_match' } });
    suiteId = suite.body.id;
  });

  it('runs base, adapter, o3-mini and o4-mini on the same items: real accuracy gap, 429 honoured, progress while it runs', async () => {
    openai.rateLimit('o4-mini', 2, 1);
    const created = await api('POST', '/evals/runs', { suite_id: suiteId, targets: ['base', 'tickets-v1', 'o3-mini', 'o4-mini'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ total: 4 * N, baseline_target_id: expect.stringMatching(/^evaltgt-/) });
    const seen: number[] = [];
    mainRun = await waitFor('the run to finish', async () => {
      const r = (await api('GET', `/evals/runs/${created.body.id}`)).body;
      seen.push(r.progress.done);
      return r.status === 'succeeded' ? r : null;
    }, 60_000, 50);
    // o4-mini's two rate-limited items wait a second, so the run is watched half done.
    expect(seen.some((d) => d > 0 && d < 4 * N)).toBe(true);
    const by = Object.fromEntries(mainRun.progress.targets.map((t: any) => [t.target, t]));
    expect(mainRun.progress.done).toBe(4 * N);
    expect(by['o4-mini']).toMatchObject({ done: N, correct: N - Math.ceil(N / 5), errors: 0 });
    expect(by['o3-mini']).toMatchObject({ done: N, correct: N - Math.ceil(N / 3), errors: 0 });
    // The tiny model computes its answers: the trained adapter routes tickets, the base model is near chance.
    const [base, v1] = [by.base.correct / N, by['tickets-v1'].correct / N];
    expect(v1).toBeGreaterThanOrEqual(0.8);
    expect(base).toBeLessThanOrEqual(0.5);

    const results = await allResults(mainRun.id);
    expect(results).toHaveLength(4 * N);
    const o4 = results.filter((r) => r.target === 'o4-mini');
    expect(o4.filter((r) => r.attempts === 2)).toHaveLength(2);
    const limited = openai.requests.filter((q) => q.status === 429);
    expect(limited).toHaveLength(2);
    for (const q of limited) {
      const text = JSON.stringify(q.body.messages);
      const retry = openai.requests.find((x) => x.model === q.model && x.at >= q.at && x.status === 200 && JSON.stringify(x.body.messages) === text)!;
      expect(retry.at - q.at).toBeGreaterThanOrEqual(950); // Retry-After: 1
    }
    // Reasoning models got max_completion_tokens and no temperature; the pool got max_tokens and temperature 0.
    const o3Bodies = openai.requests.filter((q) => q.model === 'o3-mini' && q.status === 200).map((q) => q.body);
    expect(o3Bodies.every((b) => b.max_completion_tokens === 1024 && !('temperature' in b) && !('max_tokens' in b))).toBe(true);
    expect(results.find((r) => r.target === 'o3-mini').usage).toMatchObject({ reasoning_tokens: 48, output_tokens: expect.any(Number) });
    expect(results.filter((r) => r.target === 'base').every((r) => r.ttft_ms !== null && r.ttft_ms <= r.latency_ms)).toBe(true);
    expect(results.filter((r) => r.target === 'o3-mini').every((r) => r.ttft_ms === null)).toBe(true);
  });

  it('reports accuracy with Wilson intervals, latency, tokens, cost and break-even, and the per-item diff, as JSON, Markdown and HTML', async () => {
    const json = await api('GET', `/evals/runs/${mainRun.id}/report?format=json`);
    expect(json.status).toBe(200);
    const c = json.body;
    const t = Object.fromEntries(c.targets.map((x: any) => [x.name, x]));
    expect(c.baseline).toBe('base');
    expect(t['o4-mini'].accuracy).toMatchObject({ k: N - Math.ceil(N / 5), n: N });
    expect(t['o4-mini'].accuracy.low).toBeLessThan(t['o4-mini'].accuracy.rate);
    const results = await allResults(mainRun.id);
    const o3 = results.filter((r) => r.target === 'o3-mini');
    const inTok = o3.reduce((n, r) => n + r.usage.input_tokens, 0);
    const outTok = o3.reduce((n, r) => n + r.usage.output_tokens, 0);
    expect(t['o3-mini'].tokens).toEqual({ input: inTok, output: outTok });
    expect(t['o3-mini'].usd_per_request).toBeCloseTo((inTok * 1.1 + outTok * 4.4) / 1e6 / N, 12);
    expect(t['o3-mini'].monthly.map((m: any) => m.tokens_per_day)).toEqual([1e6, 1e7]);
    expect(t['o3-mini'].ttft_ms_p50).toBeNull();
    expect(t['o4-mini'].ttft_ms_p50).toBeGreaterThan(0);
    expect(t.base.latency_ms).toMatchObject({ count: N, p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) });
    expect(t.base.usd_per_1m_tokens).toBeGreaterThan(0);
    expect(t.base.monthly[0]).toMatchObject({ tokens_per_day: 1e6, replicas: 1, usd_per_month: 2.5 * 720 });
    expect(t.base.break_even.map((b: any) => b.api_target).sort()).toEqual(['o3-mini', 'o4-mini']);
    // The diff is the results': adapter right where base was wrong, and the other way round.
    const ok = (target: string) => new Map(results.filter((r) => r.target === target).map((r) => [r.item, r.correct]));
    const [b, v1] = [ok('base'), ok('tickets-v1')];
    const wins = [...v1.keys()].filter((i) => v1.get(i) && !b.get(i));
    const losses = [...v1.keys()].filter((i) => !v1.get(i) && b.get(i));
    const diff = itemDiffs(c).find((d) => d.target === 'tickets-v1')!;
    expect(diff.wins.map((w) => w.index).sort((x, y) => x - y)).toEqual(wins.sort((x, y) => x - y));
    expect(diff.losses.map((w) => w.index)).toEqual(losses);
    expect(wins.length).toBeGreaterThan(10);

    const md = await api('GET', `/evals/runs/${mainRun.id}/report?format=md`);
    expect(md.type).toMatch(/^text\/markdown/);
    expect(md.text).toContain(`## tickets-v1 vs base: ${wins.length} wins, ${losses.length} losses`);
    expect(md.text).toContain(`| o3-mini (o3-mini) | api | 65.0% (26/40) |`);
    const html = await api('GET', `/evals/runs/${mainRun.id}/report?format=html`);
    expect(html.type).toMatch(/^text\/html/);
    expect(html.text).toContain("default-src 'none'");
    expect(html.text).not.toMatch(/<script/i);
    expect(html.text).toContain('tickets-v1');
  });

  it('records refused calls as failed items without retrying them (400 unsupported_parameter, 401)', async () => {
    await api('POST', '/evals/targets', { name: 'o3-as-chat', kind: 'api', base_url: openai.url, api_key: openaiKey, model: 'o3-mini', reasoning: false });
    await api('POST', '/evals/targets', { name: 'o3-bad-key', kind: 'api', base_url: openai.url, api_key: 'sk-wrong', model: 'o3-mini' });
    const before = openai.requests.length;
    const run = (await api('POST', '/evals/runs', { suite_id: 'tickets', targets: ['o3-as-chat', 'o3-bad-key'] })).body;
    const done = await finished(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.progress.targets.map((t: any) => [t.done, t.correct, t.errors])).toEqual([[N, 0, N], [N, 0, N]]);
    const results = await allResults(run.id);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(results.find((r) => r.target === 'o3-as-chat').error).toMatch(/400: Unsupported parameter: 'temperature'/);
    expect(results.find((r) => r.target === 'o3-bad-key').error).toMatch(/401: Incorrect API key/);
    expect(openai.requests.length - before).toBe(2 * N);
  });

  it('gates promotion on the candidate beating the baseline by a margin, with the reason when refused', async () => {
    const gate = await api('POST', '/serving/pools/evals-pool/aliases/tickets/gate', { suite_id: 'tickets', baseline_target: 'base', min_margin: 0.2 });
    expect(gate.status).toBe(201);
    expect(gate.body).toMatchObject({ pool: 'evals-pool', adapter: 'tickets', baseline_target: 'base', min_margin: 0.2 });
    // v2 never evaluated: refused.
    let res = await api('POST', '/serving/pools/evals-pool/aliases/tickets/rollout', { version: 2 });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'gate_not_met', param: 'version' });
    expect(res.body.error.message).toMatch(/tickets@v2.*there is none/);
    // v2 evaluated: it is the no-op adapter, exactly as good as the base model, so it does not clear +20 points.
    const run = (await api('POST', '/evals/runs', { suite_id: 'tickets', targets: ['base', 'tickets-v2'] })).body;
    const done = await finished(run.id);
    const [b, v2] = done.progress.targets;
    expect(v2.correct).toBe(b.correct);
    res = await api('POST', '/serving/pools/evals-pool/aliases/tickets/rollout', { version: 2 });
    expect(res.body.error.code).toBe('gate_not_met');
    const pct = ((b.correct / N) * 100).toFixed(1);
    expect(res.body.error.message).toContain(`tickets@v2 scored ${pct}% vs ${pct}% for baseline 'base': +0.0 points, the gate requires at least +20.0`);
    // v1 beats the base model by far in the main run: allowed.
    res = await api('POST', '/serving/pools/evals-pool/aliases/tickets/rollout', { version: 1 });
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(1);
    // A pool-wide gate applies once the alias's own is gone; with none at all, moves are allowed again.
    expect((await api('DELETE', '/serving/pools/evals-pool/aliases/tickets/gate')).status).toBe(200);
    expect((await api('POST', '/serving/pools/evals-pool/gate', { suite_id: suiteId, baseline_target: 'base', min_margin: 0.1 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/evals-pool/aliases/tickets/rollout', { version: 2 })).body.error.code).toBe('gate_not_met');
    expect((await api('DELETE', '/serving/pools/evals-pool/gate')).status).toBe(200);
    expect((await api('POST', '/serving/pools/evals-pool/aliases/tickets/rollout', { version: 2 })).status).toBe(200);
    expect((await api('POST', '/serving/pools/evals-pool/aliases/tickets/rollback', {})).status).toBe(200);
  });

  it('keeps other tenants out', async () => {
    const other = (await api('POST', '/admin/projects', { name: 'evals tenant B' }, app.apiKey)).body.api_key.value as string;
    expect((await api('GET', `/evals/runs/${mainRun.id}`, undefined, other)).status).toBe(404);
    expect((await api('GET', `/evals/runs/${mainRun.id}/report?format=md`, undefined, other)).status).toBe(404);
    expect((await api('GET', '/evals/targets/o3-mini', undefined, other)).status).toBe(404);
    expect((await api('GET', '/evals/targets', undefined, other)).body.data).toEqual([]);
  });

  it('resumes a run after the app stops mid-run: no item lost, none called or scored twice', async () => {
    await api('POST', '/evals/targets', { name: 'gpt-4o-mini', kind: 'api', base_url: openai.url, api_key: openaiKey, model: 'gpt-4o-mini', concurrency: 2 });
    openai.setDelay(100);
    const run = (await api('POST', '/evals/runs', { suite_id: 'tickets', targets: ['base', 'gpt-4o-mini'] })).body;
    await waitFor('a quarter done', async () => {
      const p = (await api('GET', `/evals/runs/${run.id}`)).body.progress;
      return p.targets[1].done >= N / 4;
    }, 30_000, 50);
    const prefix = app.config.env.QUEUE_PREFIX;
    await app.close();
    const before = await prisma.evalResult.findMany({ where: { runId: run.id } });
    const atStop = await prisma.evalRun.findUniqueOrThrow({ where: { id: run.id } });
    expect(atStop.status).toBe('running');
    const beforeGpt = before.filter((r) => r.targetId === run.target_ids[1]);
    expect(beforeGpt.length).toBeGreaterThanOrEqual(N / 4);
    expect(beforeGpt.length).toBeLessThan(N);
    const requestsAtStop = openai.requests.length;

    app = await startTestApp({ QUEUE_PREFIX: prefix, RECONCILE_INTERVAL_MS: '300', EVAL_RETRY_BASE_MS: '50' });
    prisma = app.started.app.get(PrismaService);
    const done = await finished(run.id);
    expect(done.status).toBe('succeeded');
    expect(done.progress.done).toBe(2 * N);
    const after = await prisma.evalResult.findMany({ where: { runId: run.id } });
    for (const id of run.target_ids) {
      expect(after.filter((r) => r.targetId === id).map((r) => r.itemIndex).sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
    }
    // Rows recorded before the stop are untouched, and their items were not asked again.
    for (const r of before) expect(after.find((a) => a.id === r.id)).toMatchObject({ itemIndex: r.itemIndex, output: r.output, createdAt: r.createdAt });
    const recorded = new Set(beforeGpt.map((r) => r.itemIndex));
    const askedAgain = openai.requests.slice(requestsAtStop).filter((q) => q.model === 'gpt-4o-mini').map((q) => truth.get(String((q.body.messages as any[])[1].content))!.i);
    expect(askedAgain.filter((i) => recorded.has(i))).toEqual([]);
    expect(askedAgain.length).toBe(N - beforeGpt.length);
    openai.setDelay(0);
  });
});
