import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { adapterFiles, examplesFromJsonl, train } from '../../jobs/tiny-lora/trainer';
import { PrismaService } from '../../src/db/prisma.service';
import { choiceLetter } from '../../src/evals/eval-item';
import { apiClient } from '../support/api-client';
import { newProject, requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';
import { loadedOn, startReplica, stopAllReplicas, TestReplica } from '../support/replicas';
import { seedAdapterVersion } from '../support/seed-adapter';

/* eslint-disable @typescript-eslint/no-explicit-any */

const FIXTURES = path.join(__dirname, '../fixtures/benchmarks');
const BIN = path.resolve(__dirname, '../../bin/loraplane.js');

/**
 * A comparison across benchmarks on a running stack: four benchmark files imported as suites, run on a tiny pool's
 * base model, an adapter trained (in-process, on the same items: a development model showing a measured difference,
 * not a benchmark claim) and served on it, and o3-mini on the OpenAI stand-in (retired since 2026-10-23: a warning).
 * The report's tables in three formats, the pool's GPU price inherited by its targets, the CLI's --wait, and an
 * llm_judge suite graded by a judge target end to end.
 */
describe('evals: comparisons (e2e)', () => {
  jest.setTimeout(180_000);
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const openaiKey = `sk-standin-${randomBytes(12).toString('hex')}`;
  /** prompt -> the right answer (a letter, or GSM8K's number), filled from the imported items. */
  const truth = new Map<string, string>();
  let app: TestApp;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;
  let openai: OpenAIStandIn;
  let replica: TestReplica;
  const suites: string[] = [];

  const api = apiClient(() => ({ url: app.url, key }));
  const importSuite = async (name: string, format: string, file: string) => {
    const form = new FormData();
    form.append('name', name);
    form.append('format', format);
    form.append('file', new Blob([readFileSync(path.join(FIXTURES, file))]), file);
    const res = await api('POST', '/evals/suites/import', form);
    expect(res.status).toBe(201);
    return res.body;
  };
  const itemsOf = async (suite: any) => (await api('GET', `/files/${suite.dataset_id}/content`)).text.trim().split('\n').map((l) => JSON.parse(l));
  /** The stand-in's o3-mini: right except on every third item it sees; the judge grades by comparing with the truth. */
  let seen = 0;
  const answer = (model: string, messages: { role: string; content: unknown }[]) => {
    const user = String(messages.find((m) => m.role === 'user')?.content ?? '');
    if (model === 'gpt-4o-mini') {
      const ref = /<reference_answer>\n([\s\S]*?)\n<\/reference_answer>/.exec(user)?.[1];
      const cand = /<candidate_answer>\n([\s\S]*?)\n<\/candidate_answer>/.exec(user)?.[1];
      return ref !== undefined && cand !== undefined && cand.toLowerCase().includes(ref.trim().toLowerCase()) ? 'CORRECT' : 'INCORRECT';
    }
    const right = truth.get(user);
    if (right === undefined) return 'I do not know.';
    return seen++ % 3 === 2 ? 'Answer: Z' : `The answer is ${right}.`;
  };

  beforeAll(async () => {
    openai = await startOpenAIStandIn({ apiKey: openaiKey, answer, reasoningTokens: 32 });
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '300', AGENT_TIMEOUT_MS: '3000', EVAL_RETRY_BASE_MS: '50' });
    prisma = app.started.app.get(PrismaService);
    ({ key, id: projectId } = await newProject(app, 'compare e2e'));
    const train_: string[] = [];
    for (const [name, format, file] of [['arc-challenge', 'arc', 'ARC-Challenge-Test.jsonl'], ['mmlu-abstract-algebra', 'mmlu', 'abstract_algebra_test.csv'], ['hellaswag', 'hellaswag', 'hellaswag_val.jsonl'], ['gsm8k', 'gsm8k', 'gsm8k-test.jsonl']]) {
      const suite = await importSuite(name, format, file);
      suites.push(suite.name);
      for (const item of await itemsOf(suite)) {
        const right = item.choices ? choiceLetter(item.answer) : item.reference;
        truth.set(item.prompt, right);
        // The tiny model answers one word of its vocabulary (letters, 0-100, labels): GSM8K's 70000 cannot be learned.
        if (/^(?:[a-e]|\d{1,2}|100)$/i.test(right)) train_.push(JSON.stringify({ messages: [{ role: 'user', content: item.prompt }, { role: 'assistant', content: right }] }));
      }
    }
    replica = await startReplica('cmp0');
    const lora = { r: 8, alpha: 16, dropout: 0 };
    const trained = await train(examplesFromJsonl(train_.join('\n')), { seed: 5, n_epochs: 30, batch_size: 4, learning_rate: 0.1, lora });
    await seedAdapterVersion({ prisma, s3, bucket, projectId }, 'bench', adapterFiles(trained, lora));
    expect((await api('POST', '/serving/pools', { name: 'tiny', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 2, usd_per_gpu_hour: 2.5, gpus_per_replica: 1 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/tiny/replicas', { name: 'cmp0', vllm_url: replica.vllmUrl, agent_url: replica.agentUrl, agent_token: replica.token })).status).toBe(201);
    expect((await api('POST', '/serving/pools/tiny/deployments', { adapter: 'bench', version: 1 })).status).toBe(201);
    await waitFor('the adapter loaded', async () => (await loadedOn(replica)).has('bench@v1'), 20_000, 100);
    await waitFor('replica ready', async () => (await api('GET', '/serving/pools/tiny')).body.replicas[0].status === 'ready', 10_000, 100);
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
    await openai?.close();
  });

  it('warns when a target is a retired model (o3-mini, 2026-10-23) and targets on a pool inherit its GPU price', async () => {
    const o3 = await api('POST', '/evals/targets', { name: 'o3-mini', kind: 'api', base_url: openai.url, api_key: openaiKey, model: 'o3-mini', concurrency: 4 });
    expect(o3.status).toBe(201);
    expect(o3.body.warnings).toEqual([expect.stringMatching(/^'o3-mini' was retired by its provider on 2026-10-23/)]);
    const judge = await api('POST', '/evals/targets', { name: 'judge', kind: 'api', base_url: openai.url, api_key: openaiKey, model: 'gpt-4o-mini' });
    expect(judge.body.warnings).toEqual([]);
    expect((await api('POST', '/evals/targets', { name: 'tiny-base', kind: 'base', pool: 'tiny', stream: true, max_tokens: 16 })).status).toBe(201);
    expect((await api('POST', '/evals/targets', { name: 'tiny-adapter', kind: 'adapter', pool: 'tiny', adapter: 'bench', version: 1, stream: true, max_tokens: 16 })).status).toBe(201);
    expect((await api('GET', '/serving/pools/tiny')).body).toMatchObject({ usd_per_gpu_hour: 2.5, gpus_per_replica: 1 });
    // The same adapter called by name through the gateway's OpenAI-compatible route, as any client would.
    expect((await api('POST', '/evals/targets', { name: 'gateway-adapter', kind: 'api', base_url: `${app.url}/v1`, api_key: key, model: 'bench@v1', stream: true, max_tokens: 16 })).status).toBe(201);
  });

  it('runs every suite on every target and reports accuracy per benchmark, latency, tokens, cost and break-even', async () => {
    const created = await api('POST', '/evals/comparisons', { name: 'tiny-vs-o3-mini', suites, targets: ['tiny-base', 'tiny-adapter', 'gateway-adapter', 'o3-mini'], baseline: 'tiny-base' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'eval.comparison', name: 'tiny-vs-o3-mini', runs: suites.map((s) => ({ suite: { name: s } })) });
    expect(created.body.progress.total).toBe((5 + 6 + 3 + 5) * 4);
    const done = await waitFor('the comparison to finish', async () => {
      const c = (await api('GET', `/evals/comparisons/${created.body.id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(c.status) ? c : null;
    }, 150_000, 200);
    expect(done).toMatchObject({ status: 'succeeded', progress: { done: 76, total: 76 } });

    const json = JSON.parse((await api('GET', '/evals/comparisons/tiny-vs-o3-mini/report?format=json')).text);
    expect(json.benchmarks.map((b: any) => [b.suite, b.scorer, b.items])).toEqual([
      ['arc-challenge', 'multiple_choice', 5], ['mmlu-abstract-algebra', 'multiple_choice', 6], ['hellaswag', 'multiple_choice', 3], ['gsm8k', 'numeric', 5],
    ]);
    const all = (name: string) => json.overall.targets.find((t: any) => t.name === name);
    // The adapter learned these items' answers; the stock tiny base model did not: a measured difference.
    expect(all('tiny-adapter').accuracy.rate).toBeGreaterThan(all('tiny-base').accuracy.rate + 0.3);
    // Through the gateway the adapter answers as it does on its replica (the same greedy decoding).
    expect(all('gateway-adapter').accuracy.k).toBe(all('tiny-adapter').accuracy.k);
    expect(all('o3-mini').accuracy).toMatchObject({ n: 19 });
    expect(all('o3-mini').accuracy.k).toBeGreaterThanOrEqual(12);
    expect(all('tiny-adapter').ttft_ms_p50).not.toBeNull();
    // Self-hosted cost from the pool's $2.50/GPU-hour over the measured throughput; API cost from the price table.
    expect(json.targets.find((t: any) => t.name === 'tiny-adapter')).toMatchObject({ usd_per_gpu_hour: 2.5, gpus: 1 });
    expect(all('tiny-adapter').monthly.map((m: any) => m.tokens_per_day)).toEqual([1_000_000, 10_000_000]);
    expect(all('o3-mini').usd_per_1m_tokens).toBeGreaterThan(0);
    expect(all('tiny-adapter').break_even[0]).toMatchObject({ api_target: 'o3-mini' });
    expect(json.warnings).toEqual([expect.stringMatching(/^o3-mini: 'o3-mini' was retired/)]);
    expect(all('gateway-adapter').results.every((r: any) => r.error === null)).toBe(true);

    const md = (await api('GET', '/evals/comparisons/tiny-vs-o3-mini/report?format=md')).text;
    for (const title of ['## Accuracy per benchmark (95% Wilson interval)', '## Latency and tokens', '## Cost', '## Self-hosted GPU $/hour against API $/token']) expect(md).toContain(title);
    expect(md).toMatch(/\| gsm8k \| numeric \| 5 \| [\d.]+% \[[\d.]+%–[\d.]+%\] \(\d\/5\) \|/);
    expect(md).toContain('$/month @ 10M tokens/day');
    if (process.env.COMPARISON_REPORT_FILE) writeFileSync(process.env.COMPARISON_REPORT_FILE, md);
    const html = await api('GET', '/evals/comparisons/tiny-vs-o3-mini/report?format=html');
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html.text).toContain('<h2>Accuracy per benchmark (95% Wilson interval)</h2>');
  });

  it('refuses a comparison naming a missing suite or target, or a baseline outside it', async () => {
    const bad = async (body: object) => (await api('POST', '/evals/comparisons', body)).body.error.param;
    expect(await bad({ name: 'x', suites: ['gsm8k', 'nope'], targets: ['o3-mini'] })).toBe('suites[1]');
    expect(await bad({ name: 'x', suites: ['gsm8k'], targets: ['nope'] })).toBe('targets[0]');
    expect(await bad({ name: 'x', suites: ['gsm8k'], targets: ['o3-mini'], baseline: 'tiny-base' })).toBe('baseline');
    expect(await bad({ name: 'tiny-vs-o3-mini', suites: ['gsm8k'], targets: ['o3-mini'] })).toBe('name');
  });

  it('grades a chat suite with llm_judge through a judge target, and compares with the CLI --wait', async () => {
    const chat = await importSuite('tickets-chat', 'chat', 'chat-eval.jsonl');
    const judged = await api('POST', '/evals/suites', { name: 'tickets-judged', dataset_id: chat.dataset_id, scorer: { type: 'llm_judge', model: 'gpt-4o-mini' }, judge_target: 'judge' });
    expect(judged.status).toBe(201);
    const chatItems = await itemsOf(chat);
    for (const item of chatItems) truth.set(item.prompt.at(-1).content, item.reference);
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'evals', 'compare', 'judged', '--suite', 'tickets-judged', '--target', 'o3-mini', '--wait'], {
        env: { ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key },
      }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
    });
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('# Comparison: judged');
    expect(out.stdout).toMatch(/\| tickets-judged \| llm\\_judge \| 2 \|/);
    // The judge saw every candidate: one request per item, each CORRECT or INCORRECT by the truth.
    const judgeCalls = openai.requests.filter((r) => r.model === 'gpt-4o-mini' && r.status === 200);
    expect(judgeCalls).toHaveLength(2);
    const results = await prisma.evalResult.findMany({ where: { run: { comparison: { name: 'judged', projectId } } } });
    expect(results).toHaveLength(2);
    // The verdicts are the judge's: right exactly where the answer holds the reference.
    for (const r of results) {
      expect(r.error).toBeNull();
      expect(r.correct).toBe(r.output!.toLowerCase().includes(chatItems[r.itemIndex].reference));
    }
  });
});
