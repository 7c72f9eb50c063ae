import fs from 'node:fs';
import path from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { newId } from '../../src/common/ids';
import { PrismaService } from '../../src/db/prisma.service';
import { ModelCatalog } from '../../src/training/model-catalog';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { axeSeriousViolations, payloadTraces } from '../support/dashboard-checks';
import { seedAdapterVersion } from '../support/seed-adapter';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';

const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts/dashboard');
const XSS_SCRIPT = '<script>window.__pwned = "script"</script>';
const XSS_IMG = '<img src=x onerror="window.__pwned = \'img\'">';

/**
 * The dashboard in Debian's Chromium (playwright-core), served by the real app at / from the bundle `npm run build`
 * made: sign in, a job started from the New job page whose loss chart gains points while it runs, a rollback
 * clicked in the UI that moves the alias (checked through the API), an eval report showing both targets, script
 * and onerror payloads in a dataset, a suffix and an alias reason that stay text, axe-core on every page, no console
 * errors, and a screenshot of every page in test-artifacts/dashboard/.
 */
describe('dashboard in Chromium (e2e)', () => {
  jest.setTimeout(120_000);
  let app: TestApp;
  let openai: OpenAIStandIn;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;
  const consoleErrors: string[] = [];
  const requestUrls: string[] = [];
  /**
   * Chromium logs every 4xx fetch as a console error: the refusals this test provokes on purpose (a wrong key, a
   * refused suffix) are listed here before they happen, and each one excuses exactly one such message.
   */
  const expected: RegExp[] = [];
  const screenshots: string[] = [];

  // The shared client: every 2xx JSON answer the test reads is also checked against the OpenAPI document.
  const api = apiClient(() => ({ url: app.url, key }));
  const upload = async (name: string, text: string, query = '') => {
    const form = new FormData();
    form.append('file', new Blob([text]), name);
    return (await api('POST', `/datasets${query}`, form)).body as { id: string; status: string; filename: string };
  };
  const go = async (hash: string) => {
    await page.goto(`${app.url}/#/${hash}`);
    await page.waitForSelector('main h1');
  };
  const shoot = async (name: string) => {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    screenshots.push(file);
  };
  const axeSerious = () => axeSeriousViolations(page);
  const noPayloadRan = async () => expect(await payloadTraces(page)).toEqual({ pwned: null, images: 0, scripts: 0 });

  async function seedVersion(adapter: string, version: number) {
    // The pool's preflight wants the base weights the tiny model's catalog entry names.
    const revision = app.started.app.get(ModelCatalog).find('tiny-lora')?.weights.ref;
    const config = { base_model_name_or_path: 'tiny-lora', revision, r: 8, lora_alpha: 16, target_modules: ['lm_head'], peft_type: 'LORA' };
    const files = [
      { name: 'adapter_config.json', data: Buffer.from(JSON.stringify(config)) },
      { name: 'adapter_model.safetensors', data: Buffer.from(`weights v${version}`) },
    ];
    expect(await seedAdapterVersion({ prisma, s3: testS3(), bucket: requireEnv('S3_BUCKET'), projectId }, adapter, files)).toBe(version);
  }

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // o3-mini and o4-mini answer the eval items; gpt-4o-mini answers the playground with an onerror payload.
    openai = await startOpenAIStandIn({ apiKey: 'sk-dashboard-test', answer: (model) => ({ 'o3-mini': 'billing', 'o4-mini': 'shipping' })[model] ?? `see ${XSS_IMG}` });
    app = await startTestApp({ MODEL_CATALOG_FILE: writeFakeCatalog(), RECONCILE_INTERVAL_MS: '500' });
    prisma = app.started.app.get(PrismaService);
    const created = (await api('POST', '/admin/projects', { name: 'dashboard e2e' }, app.apiKey)).body;
    key = created.api_key.value;
    projectId = created.id;
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const i = expected.findIndex((re) => re.test(m.text()));
      if (i >= 0) return void expected.splice(i, 1);
      consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requestUrls.push(r.url()));
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await openai?.close();
    // eslint-disable-next-line no-console
    if (screenshots.length) console.log(`dashboard screenshots:\n${screenshots.map((s) => `  ${s}`).join('\n')}`);
  });
  afterEach(() => {
    expect(consoleErrors).toEqual([]);
    expect(expected).toEqual([]);
  });

  it('is served at / with a CSP that allows no inline script', async () => {
    const res = await fetch(`${app.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/[^"]+\.js"><\/script>/);
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
  });

  it('signs in with the key kept in sessionStorage and sent only in the Authorization header; signs out', async () => {
    await page.goto(app.url);
    await page.getByLabel('API key').fill('lp_wrong_key_0123456789abcdef');
    expected.push(/status of 401/);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('loraplane.apiKey')")).toBe(key);
    expect(await page.evaluate('document.cookie + JSON.stringify(localStorage)')).not.toContain(key);
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('loraplane.apiKey')")).toBeNull();
    // An admin key sees the admin views.
    await page.getByLabel('API key').fill(app.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('heading', { name: 'GPU hosts' }).waitFor();
    // Projects with how many keys each has left, and a new key for one (the way back in for a locked-out tenant).
    const tenant = page.getByRole('row', { name: /dashboard e2e/ });
    await tenant.waitFor();
    expect(await tenant.innerText()).toMatch(/dashboard e2e\s+dashboard-e2e\s+1\s/);
    await tenant.getByRole('button', { name: 'New key for dashboard e2e' }).click();
    const issued = (await page.getByRole('status').innerText()).match(/shown once: (lp_\S+)/)?.[1];
    expect((await fetch(`${app.url}/v1/project`, { headers: { authorization: `Bearer ${issued}` } }).then((r) => r.json() as Promise<{ name: string }>)).name).toBe('dashboard e2e');
    await page.getByRole('row', { name: /dashboard e2e\s+dashboard-e2e\s+2\s/ }).waitFor();
    await shoot('admin');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    await shoot('sign-in-jobs-empty');
  });

  let datasetId: string;
  it('renders dataset lines and validation errors carrying script and onerror payloads as text', async () => {
    const lines = Array.from({ length: 24 }, (_, i) =>
      JSON.stringify({ messages: [{ role: 'user', content: `ticket ${i} ${i % 2 ? XSS_SCRIPT : XSS_IMG}` }, { role: 'assistant', content: i % 3 ? 'billing' : 'shipping' }] }),
    );
    const ok = await upload('tickets.jsonl', lines.join('\n'));
    expect(ok.status).toBe('ready');
    datasetId = ok.id;
    const bad = await upload(`bad${XSS_IMG}.jsonl`, `${lines[0]}\n{"messages":[{"role":"${XSS_SCRIPT}","content":"x"}]}\n{"messages":[{"role":"bot","content":"x"}]}\n`);
    expect(bad.status).toBe('invalid');
    await go('datasets');
    await page.getByRole('link', { name: datasetId }).waitFor();
    await noPayloadRan();
    await shoot('datasets');
    await go(`datasets/${bad.id}`);
    await page.getByRole('heading', { name: /Validation report: \d+ errors/ }).waitFor();
    const report = page.locator('.card', { has: page.getByRole('heading', { name: /Validation report/ }) });
    expect(await report.locator('tbody tr').count()).toBeGreaterThan(0);
    // The Field column: an error's path, as the API names it (line 3's unknown role; the hand-written type read a
    // `field` the API never sends, so the column was always empty).
    expect(await report.locator('tbody').innerText()).toContain('messages[0].role');
    expect(bad.filename).toContain('onerror');
    await page.getByText(bad.filename).first().waitFor();
    await noPayloadRan();
    await go(`datasets/${datasetId}`);
    // "ticket 1 " is in the good file only: the wait cannot be satisfied by the bad dataset's page just left.
    await page.locator('pre.lines', { hasText: 'ticket 1 ' }).waitFor();
    // The raw JSON lines, quotes escaped as in the file.
    expect(await page.locator('pre.lines').innerText()).toContain(JSON.stringify(XSS_SCRIPT).slice(1, -1));
    expect(await page.locator('pre.lines').innerText()).toContain(JSON.stringify(XSS_IMG).slice(1, -1));
    await page.getByRole('img', { name: /token statistics histogram/ }).waitFor();
    await noPayloadRan();
    await shoot('dataset');
  });

  let jobId: string;
  it('launches a job from New job (estimate and hyperparameters first); its loss chart gains points while it runs', async () => {
    await go('new-job');
    await page.getByLabel('Dataset').selectOption(datasetId);
    await page.getByLabel('Model').selectOption('fake-steady');
    await page.getByLabel('Suffix').fill(XSS_IMG);
    expected.push(/status of 400/);
    await page.getByRole('button', { name: 'Estimate cost' }).click();
    await page.getByRole('alert').filter({ hasText: 'suffix' }).waitFor();
    await noPayloadRan();
    await page.getByLabel('Suffix').fill('live-chart');
    await page.getByRole('button', { name: 'Estimate cost' }).click();
    await page.getByRole('heading', { name: 'Resolved hyperparameters' }).waitFor();
    expect(await page.locator('.card', { hasText: 'Before launch' }).innerText()).toMatch(/n_epochs/);
    await shoot('new-job');
    await page.getByRole('button', { name: 'Launch job' }).click();
    await page.waitForURL(/#\/jobs\/ftjob-/);
    jobId = decodeURIComponent(page.url().split('/').pop()!);
    const chart = page.locator('figure.chart', { has: page.getByRole('img', { name: /training and validation loss/ }) });
    const points = async () => Number(await chart.getAttribute('data-points'));
    await waitFor('first points on the loss chart', async () => (await points()) >= 2, 60_000, 100);
    const first = await points();
    const statusThen = (await api('GET', `/fine_tuning/jobs/${jobId}`)).body.status;
    await waitFor('more points on the loss chart', async () => (await points()) >= first + 5, 30_000, 100);
    const statusNow = (await api('GET', `/fine_tuning/jobs/${jobId}`)).body.status;
    expect([statusThen, statusNow]).toEqual(['running', 'running']);
    await shoot('job-running');
    await waitFor('the job to succeed', async () => (await api('GET', `/fine_tuning/jobs/${jobId}`)).body.status === 'succeeded', 60_000);
    const metrics = (await api('GET', `/fine_tuning/jobs/${jobId}/events?limit=100`)).body.data.filter((e: { type: string }) => e.type === 'metrics');
    expect(metrics).toHaveLength(60);
    await waitFor(`all 60 points (chart has ${await points()})`, async () => (await points()) === 60, 10_000, 100);
    await page.getByText('Checkpoint saved at step 3').waitFor();
    await page.getByRole('img', { name: 'learning rate: 60 points' }).waitFor();
    await go('jobs');
    await page.getByRole('link', { name: jobId }).waitFor();
    await page.getByLabel('Status').selectOption('failed');
    expect(await page.getByRole('link', { name: jobId }).count()).toBe(0);
    await page.getByLabel('Status').selectOption('succeeded');
    await page.getByRole('link', { name: jobId }).waitFor();
    await shoot('jobs');
    await go(`jobs/${jobId}`);
    await page.getByRole('img', { name: 'training and validation loss: 60 points' }).waitFor();
    await page.getByText('ckpt-step-3').waitFor();
    await shoot('job-succeeded');
  });

  it('moves an alias back when Rollback is clicked (checked through the API); reasons stay text', async () => {
    await seedVersion('tickets', 1);
    await seedVersion('tickets', 2);
    expect((await api('POST', '/serving/pools', { name: 'ui-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/ui-pool/aliases/tickets/rollout', { version: 1, reason: 'first release' })).status).toBe(200);
    expect((await api('POST', '/serving/pools/ui-pool/aliases/tickets/rollout', { version: 2, reason: `retrained ${XSS_SCRIPT} ${XSS_IMG}` })).status).toBe(200);
    await go('serving');
    const alias = page.locator('[data-alias="tickets"]');
    await alias.getByTestId('alias-version').filter({ hasText: 'v2' }).waitFor();
    await alias.getByText(`retrained ${XSS_SCRIPT} ${XSS_IMG}`).waitFor();
    await noPayloadRan();
    await alias.getByLabel('Action').selectOption('rollback');
    await alias.getByLabel('Reason').fill(`v2 answers worse ${XSS_IMG}`);
    await alias.getByRole('button', { name: 'Rollback' }).click();
    await waitFor('the alias back on v1', async () => (await api('GET', '/serving/pools/ui-pool/aliases/tickets')).body.version === 1, 10_000, 100);
    await alias.getByTestId('alias-version').filter({ hasText: 'v1' }).waitFor();
    const history = (await api('GET', '/serving/pools/ui-pool/aliases/tickets/history')).body.data;
    expect(history[0]).toMatchObject({ action: 'rollback', from_version: 2, to_version: 1, reason: `v2 answers worse ${XSS_IMG}` });
    await alias.getByText(`v2 answers worse ${XSS_IMG}`).waitFor();
    await noPayloadRan();
    await shoot('serving');
    await go('adapters');
    await page.getByText('tickets@v2').waitFor();
    await page.getByText('ui-pool: deployed, alias tickets').waitFor();
    await shoot('adapters');
  });

  let suiteId: string;
  let evalFileId: string;
  it("renders an eval run's comparison with both targets, intervals, latency and cost", async () => {
    const items = ['billing', 'shipping', 'billing', 'shipping', 'billing', 'billing', 'shipping', 'billing', 'shipping', 'billing'].map((label, i) => JSON.stringify({ prompt: [{ role: 'user', content: `ticket ${i}` }], reference: label }));
    const file = await upload('eval.jsonl', items.join('\n'), '?format=eval&purpose=evals');
    expect(file.status).toBe('ready');
    for (const model of ['o3-mini', 'o4-mini']) {
      expect((await api('POST', '/evals/targets', { name: model, kind: 'api', base_url: openai.url, api_key: 'sk-dashboard-test', model })).status).toBe(201);
    }
    const suite = (await api('POST', '/evals/suites', { name: 'tickets-ui', dataset_id: file.id, scorer: 'exact_match' })).body;
    suiteId = suite.id;
    evalFileId = file.id;
    const run = (await api('POST', '/evals/runs', { suite_id: suite.id, targets: ['o3-mini', 'o4-mini'] })).body;
    await waitFor('the eval run', async () => (await api('GET', `/evals/runs/${run.id}`)).body.status === 'succeeded', 60_000);
    await go('evals');
    await page.getByRole('link', { name: run.id }).click();
    const chart = page.getByRole('img', { name: /accuracy per target with 95% intervals/ });
    await chart.waitFor();
    const targets = page.locator('.card', { has: page.getByRole('heading', { name: 'Targets' }) });
    const text = await targets.innerText();
    expect(text).toContain('o3-mini');
    expect(text).toContain('o4-mini');
    expect(text).toContain('60.0% (6/10)'); // o3-mini answers "billing": 6 of 10 items
    expect(text).toContain('40.0% (4/10)');
    expect(await chart.locator('.whisker').count()).toBe(2);
    await shoot('eval-run');
  });

  let comparisonId: string;
  it('renders a comparison across two benchmarks: both targets, intervals, latency, cost, wins and losses', async () => {
    const second = (await api('POST', '/evals/suites', { name: 'tickets-ui-again', dataset_id: evalFileId, scorer: 'exact_match' })).body;
    const created = await api('POST', '/evals/comparisons', { name: 'tickets-cmp', suites: [suiteId, second.id], targets: ['o3-mini', 'o4-mini'] });
    expect(created.status).toBe(201);
    comparisonId = created.body.id;
    await waitFor('the comparison', async () => (await api('GET', `/evals/comparisons/${comparisonId}`)).body.status === 'succeeded', 60_000);
    await go('evals');
    await page.getByRole('link', { name: 'tickets-cmp' }).click();
    for (const suite of ['tickets-ui', 'tickets-ui-again']) {
      const chart = page.getByRole('img', { name: `accuracy per target with 95% intervals on ${suite}`, exact: true });
      await chart.waitFor();
      expect(await chart.locator('.whisker').count()).toBe(2);
    }
    const accuracy = await page.locator('.card', { has: page.getByRole('heading', { name: /^Accuracy per benchmark/ }) }).innerText();
    expect(accuracy).toMatch(/tickets-ui\s+exact_match\s+10\s+60\.0% \[[\d.]+%–[\d.]+%\] \(6\/10\)\s+40\.0% \[[\d.]+%–[\d.]+%\] \(4\/10\)/);
    expect(accuracy).toMatch(/All\s+20\s+60\.0% .*\(12\/20\)\s+40\.0% .*\(8\/20\)/);
    for (const name of ['latency p50 and p95 per target in milliseconds', 'cost per 1M tokens per target in dollars', 'cost per month at 1M tokens a day per target in dollars', 'cost per month at 10M tokens a day per target in dollars']) {
      await page.getByRole('img', { name }).waitFor();
    }
    const cost = await page.locator('.card', { has: page.getByRole('heading', { name: 'Cost' }) }).innerText();
    expect(cost).toContain('$ / month @ 10M tokens/day');
    for (const target of ['o3-mini', 'o4-mini']) expect(cost).toContain(target);
    // o4-mini ("shipping") is right on the 4 shipping items of each benchmark, where the baseline o3-mini is wrong.
    const diff = page.locator('.card', { has: page.getByRole('heading', { name: 'o4-mini vs o3-mini: 8 wins, 12 losses' }) });
    expect(await diff.locator('tbody tr').count()).toBe(20);
    expect(await diff.innerText()).toContain('tickets-ui-again #1');
    await shoot('eval-comparison');
  });

  it('canary, a promote the gate refuses (shown as the API words it), and a promote that passes, clicked in the UI', async () => {
    expect((await api('POST', '/serving/pools/ui-pool/aliases/tickets/gate', { suite_id: suiteId, baseline_target: 'o3-mini' })).status).toBe(201);
    await go('serving');
    const alias = page.locator('[data-alias="tickets"]');
    await alias.getByTestId('alias-version').filter({ hasText: 'v1' }).waitFor();
    // The pool has no replicas, so the canary takes a share of the requests.
    await alias.getByLabel('Action').selectOption('canary');
    await alias.getByLabel('Version').fill('2');
    await alias.getByLabel('Canary by').selectOption('requests');
    await alias.getByLabel('Share of requests (%)').fill('20');
    await alias.getByLabel('Reason').fill('try v2 on a fifth');
    await alias.getByRole('button', { name: 'Canary' }).click();
    await waitFor('the canary', async () => (await api('GET', '/serving/pools/ui-pool/aliases/tickets')).body.canary?.version === 2, 10_000, 100);
    expect((await api('GET', '/serving/pools/ui-pool/aliases/tickets')).body).toMatchObject({ version: 1, canary: { version: 2, by: 'requests', request_share: 20 } });
    await alias.getByTestId('alias-canary').filter({ hasText: 'canary v2 on 20% of requests' }).waitFor();

    // No eval of tickets@v2 yet: the gate refuses, and the page shows the API's own words.
    await alias.getByLabel('Action').selectOption('promote');
    await alias.getByLabel('Reason').fill('looks fine');
    expected.push(/status of 400/);
    await alias.getByRole('button', { name: 'Promote' }).click();
    const refusal = alias.getByRole('alert');
    await refusal.waitFor();
    const fromApi = await api('POST', '/serving/pools/ui-pool/aliases/tickets/promote', { reason: 'looks fine' });
    expect(fromApi.status).toBe(400);
    expect(fromApi.body.error.code).toBe('gate_not_met');
    expect(await refusal.innerText()).toContain(fromApi.body.error.message);
    expect((await api('GET', '/serving/pools/ui-pool/aliases/tickets')).body).toMatchObject({ version: 1, canary: { version: 2 } });
    await shoot('serving-gate-refused');

    // tickets@v2 beats the baseline on the gate's suite. The run is written as the eval worker writes one: a real
    // one needs a vLLM replica serving the adapter, which this test has not (the eval runner has its own suites).
    const candidate = (await api('POST', '/evals/targets', { name: 'tickets-v2', kind: 'adapter', pool: 'ui-pool', adapter: 'tickets', version: 2 })).body;
    const baseline = (await api('GET', '/evals/targets')).body.data.find((t: { name: string }) => t.name === 'o3-mini');
    const runId = newId.evalRun();
    await prisma.evalRun.create({ data: { id: runId, projectId, suiteId, status: 'succeeded', targetIds: [baseline.id, candidate.id], total: 20, finishedAt: new Date() } });
    await prisma.evalResult.createMany({
      data: Array.from({ length: 10 }, (_, i) => [
        { runId, targetId: candidate.id, itemIndex: i, correct: true },
        { runId, targetId: baseline.id, itemIndex: i, correct: i < 6 },
      ]).flat(),
    });
    await alias.getByLabel('Reason').fill(`beats o3-mini ${XSS_SCRIPT}`);
    await alias.getByRole('button', { name: 'Promote' }).click();
    await waitFor('the promotion', async () => (await api('GET', '/serving/pools/ui-pool/aliases/tickets')).body.version === 2, 10_000, 100);
    expect((await api('GET', '/serving/pools/ui-pool/aliases/tickets')).body.canary).toBeNull();
    const history = (await api('GET', '/serving/pools/ui-pool/aliases/tickets/history')).body.data;
    expect(history[0]).toMatchObject({ action: 'promote', from_version: 1, to_version: 2, reason: `beats o3-mini ${XSS_SCRIPT}` });
    expect(history[1]).toMatchObject({ action: 'canary', from_version: 1, to_version: 2, canary_request_share: 20, reason: 'try v2 on a fifth' });
    await alias.getByTestId('alias-version').filter({ hasText: 'v2' }).waitFor();
    expect(await alias.getByRole('alert').count()).toBe(0);
    await alias.getByText(`beats o3-mini ${XSS_SCRIPT}`).waitFor();
    await noPayloadRan();
    await shoot('serving-promoted');
  });

  it('chats with two models side by side through the gateway, streamed, with latency and tokens; output stays text', async () => {
    for (const name of ['gpt-4o-mini', 'o3-mini']) {
      expect((await api('POST', '/provider_models', { name, base_url: openai.url, api_key: 'sk-dashboard-test' })).status).toBe(201);
    }
    await go('playground');
    await page.getByLabel('Model 1').fill('gpt-4o-mini');
    await page.getByLabel(/^Model 2/).fill('o3-mini');
    await page.getByLabel(/^Model 3/).fill('no-such-model');
    expected.push(/status of 404/); // the browser logs the failed model call
    await page.getByLabel('Prompt').fill('Which team handles a refund?');
    await page.getByRole('button', { name: 'Send' }).click();
    const card = (model: string) => page.locator('.card', { has: page.getByRole('heading', { name: model, exact: true }) });
    for (const [model, answer] of [['gpt-4o-mini', `see ${XSS_IMG}`], ['o3-mini', 'billing']]) {
      await card(model).locator('pre.answer').filter({ hasText: answer }).waitFor();
      await card(model).getByText(/total \d+ ms/).waitFor();
      expect(await card(model).innerText()).toMatch(/tokens in \d+ \/ out \d+/);
    }
    // A model that fails says why, and no longer reads as still waiting ('total …').
    await card('no-such-model').getByText(/does not exist or you do not have access/).waitFor();
    expect(await card('no-such-model').innerText()).toMatch(/total —/);
    expect(await card('no-such-model').locator('pre.answer').count()).toBe(0);
    await noPayloadRan();
    const streamed = openai.requests.filter((r) => r.model === 'gpt-4o-mini').at(-1)!.body;
    expect(streamed).toMatchObject({ stream: true, messages: [{ role: 'user', content: 'Which team handles a refund?' }] });
    await shoot('playground');
  });

  it("manages the project's keys: a new inference key shown once, listed with what it may do, revoked after a confirmation", async () => {
    await go('keys');
    await page.getByLabel('Name').fill('support app');
    await page.getByLabel('May').selectOption('inference');
    await page.getByRole('button', { name: 'Create key' }).click();
    const value = await page.getByRole('status').locator('code').innerText();
    expect(value).toMatch(/^lp_\S+$/);
    const as = (route: string) => fetch(`${app.url}/v1${route}`, { headers: { authorization: `Bearer ${value}` } }).then((r) => r.status);
    expect([await as('/models'), await as('/files')]).toEqual([200, 403]); // what "Call models only" means
    const row = page.getByRole('row', { name: /support app/ });
    await row.getByText('Call models only (an application)').waitFor();
    expect(await page.locator('table').innerText()).not.toContain(value); // listed redacted
    await shoot('keys');
    await row.getByRole('button', { name: 'Revoke support app…' }).click();
    await row.getByRole('button', { name: 'Revoke support app', exact: true }).click();
    await row.waitFor({ state: 'detached' });
    await waitFor('the revoked key refused', async () => (await as('/models')) === 401, 5000, 100);
    // The key this tab is signed in with is marked; revoking it signs the tab out.
    const other = (await api('POST', '/api_keys', { name: 'signed in here' })).body;
    await page.evaluate(`sessionStorage.setItem('loraplane.apiKey', ${JSON.stringify(other.value)})`);
    await page.reload(); // the tab now signs in with that key
    await page.waitForSelector('main h1');
    const mine = page.getByRole('row', { name: /signed in here \(this key\)/ });
    await mine.getByRole('button', { name: 'Revoke signed in here…' }).click();
    await mine.getByRole('button', { name: 'Revoke signed in here (signs you out)' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('loraplane.apiKey')")).toBeNull();
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'API keys' }).waitFor(); // back where it was
  });

  const everyPage = () => ['jobs', `jobs/${jobId}`, 'new-job', 'datasets', `datasets/${datasetId}`, 'adapters', 'serving', 'evals', `evals/comparisons/${comparisonId}`, 'playground', 'usage', 'keys'];

  it('passes axe-core with no serious violations on every page; no request URL carries the key', async () => {
    const pages = everyPage();
    const found: Record<string, string[]> = {};
    for (const p of pages) {
      await go(p);
      await page.waitForLoadState('networkidle');
      const v = await axeSerious();
      if (v.length) found[p] = v;
      if (p === 'usage') await shoot('usage');
    }
    expect(found).toEqual({});
    expect(requestUrls.filter((u) => u.includes(key) || u.includes(app.apiKey))).toEqual([]);
  });

  it("fits a phone's width: no page scrolls sideways, the nav is a bar across the top", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      const wide: Record<string, { scrollWidth: number; past: string[] }> = {};
      for (const p of everyPage()) {
        await go(p);
        await page.waitForLoadState('networkidle');
        // Wide tables scroll inside their own box (.table-wrap); the page itself must not. What sticks out is named
        // (the innermost elements past the right edge): a long id in a title once did, with wide letters only.
        const width = await page.evaluate<{ scrollWidth: number; past: string[] }>(`(() => {
          const out = [...document.querySelectorAll('body *')].filter((e) => !e.closest('.table-wrap, pre') && e.getBoundingClientRect().right > innerWidth + 0.5);
          const innermost = out.filter((e) => !out.some((o) => o !== e && e.contains(o)));
          return { scrollWidth: document.documentElement.scrollWidth, past: innermost.slice(0, 3).map((e) => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ': ' + (e.textContent ?? '').slice(0, 40)) };
        })()`);
        if (width.scrollWidth > 390) wide[p] = width;
        // Both boxes from one layout (two separate reads once disagreed on one page of a fresh-clone run: main's top
        // above the nav's bottom); the numbers are in the failure.
        const box = await page.evaluate<{ navTop: number; navWidth: number; navBottom: number; mainTop: number }>(`(() => {
          const n = document.querySelector('nav[aria-label="Main"]').getBoundingClientRect();
          const m = document.querySelector('main').getBoundingClientRect();
          return { navTop: n.top, navWidth: n.width, navBottom: n.bottom, mainTop: m.top };
        })()`);
        const below = box.mainTop >= box.navBottom - 0.5 || `main's top at ${box.mainTop}, the nav's bottom at ${box.navBottom}`;
        expect({ page: p, navTop: box.navTop, navWidth: box.navWidth, mainBelowNav: below }).toEqual({ page: p, navTop: 0, navWidth: 390, mainBelowNav: true });
        if (p === `jobs/${jobId}` || p === 'serving') await shoot(`phone-${p.split('/')[0]}`);
      }
      expect(wide).toEqual({});
      // The worst an id can be: ids are random, and one of wide letters only must still wrap in a title.
      await go(`datasets/${datasetId}`);
      await page.evaluate(`document.querySelector('main h1').textContent = 'Dataset file-${'W'.repeat(24)}'`);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    } finally {
      await page.setViewportSize({ width: 1360, height: 900 });
    }
  });
});
