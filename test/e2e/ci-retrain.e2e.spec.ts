import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTicketExamples, makeTicketSplit, TICKET_LABELS, toJsonl } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { newProject, startTestApp, TestApp } from '../support/app';
import { startReplica, stopAllReplicas } from '../support/replicas';

const ROOT = path.resolve(__dirname, '../..');

/**
 * The CI retraining flow of .github/workflows/retrain.yml, run for real: scripts/ci-retrain.sh with the built CLI
 * against the app and a pool of the tiny model. A first release goes out; a retrain on mislabelled data is evaluated
 * against production, refused by the gate (exit 4) with the comparison in the job summary, and production stays;
 * a retrain on more data beats production and is promoted.
 */
describe('CI retraining with the CLI (e2e)', () => {
  jest.setTimeout(300_000);
  let app: TestApp;
  let key: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-retrain-'));
  const summary = path.join(dir, 'summary.md');

  const retrain = (train: string, extra: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('bash', [path.join(ROOT, 'scripts/ci-retrain.sh')], {
        env: {
          ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key, LORAPLANE: `${process.execPath} ${path.join(ROOT, 'bin/loraplane.js')}`,
          TRAIN_FILE: path.join(dir, train), EVAL_FILE: path.join(dir, 'eval.jsonl'), BASE_MODEL: 'tiny-lora', POOL: 'support', ADAPTER: 'tickets',
          SUMMARY_FILE: summary, GITHUB_SHA: 'abc123', ...extra,
        },
        maxBuffer: 16 << 20,
      }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
  const api = apiClient(() => ({ url: app.url, key }));
  const alias = async () => ((await api('GET', '/serving/pools/support/aliases/tickets')).body as { version: number }).version;

  beforeAll(async () => {
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '500' });
    ({ key } = await newProject(app, 'retrain e2e'));
    const replica = await startReplica('ci0');
    expect((await api('POST', '/serving/pools', { name: 'support', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/support/replicas', { name: 'ci0', vllm_url: replica.vllmUrl, agent_url: replica.agentUrl, agent_token: replica.token })).status).toBe(201);

    const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 400, nHeldOut: 60, seed: 17 });
    fs.writeFileSync(path.join(dir, 'more.jsonl'), trainJsonl);
    fs.writeFileSync(path.join(dir, 'few.jsonl'), toJsonl(makeTicketExamples({ n: 30, seed: 18 })));
    // Every label rotated to the next team: a dataset that teaches the wrong answers.
    const wrong = makeTicketExamples({ n: 400, seed: 19 }).map((e) => {
      const next = TICKET_LABELS[(TICKET_LABELS.indexOf(e.label) + 1) % TICKET_LABELS.length];
      return { ...e, label: next, messages: [...e.messages.slice(0, -1), { role: 'assistant' as const, content: next }] };
    });
    fs.writeFileSync(path.join(dir, 'wrong.jsonl'), toJsonl(wrong));
    fs.writeFileSync(path.join(dir, 'eval.jsonl'), heldOut.map((e) => JSON.stringify({ prompt: e.messages.slice(0, -1), reference: e.label })).join('\n'));
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('releases the first version without a comparison', async () => {
    // 30 examples x 3 epochs: a weak first release (about half right), which a mislabelled retrain is worse than.
    const r = await retrain('few.jsonl', { EPOCHS: '3' });
    expect(r.stderr).toMatch(/==> first release: no alias yet, rolling out v1/);
    expect(r.code).toBe(0);
    expect(await alias()).toBe(1);
    expect(fs.readFileSync(summary, 'utf8')).toMatch(/First release on `support`/);
  });

  it('refuses a worse retrain at the gate (exit 4), with the comparison in the summary; production stays', async () => {
    fs.writeFileSync(summary, '');
    const r = await retrain('wrong.jsonl');
    expect(r.stderr).toMatch(/promotion of tickets@v2 refused/i);
    expect(r.code).toBe(4);
    expect(await alias()).toBe(1);
    const text = fs.readFileSync(summary, 'utf8');
    expect(text).toMatch(/### tickets@v2 vs production \(v1\)/);
    expect(text).toMatch(/\| tickets-v2 /);
    expect(text).toMatch(/\*\*Not promoted\*\*/);
  });

  it('promotes a better retrain', async () => {
    fs.writeFileSync(summary, '');
    const r = await retrain('more.jsonl');
    expect(r.code).toBe(0);
    expect(await alias()).toBe(3);
    expect(fs.readFileSync(summary, 'utf8')).toMatch(/\*\*Promoted\*\*: the alias `tickets` now serves v3/);
  });
});
