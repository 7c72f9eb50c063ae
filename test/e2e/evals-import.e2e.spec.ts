import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PrismaService } from '../../src/db/prisma.service';
import { newProject, startTestApp, TestApp } from '../support/app';

/* eslint-disable @typescript-eslint/no-explicit-any */

const FIXTURES = path.join(__dirname, '../fixtures/benchmarks');
const BIN = path.resolve(__dirname, '../../bin/loraplane.js');

/**
 * Benchmark files imported as eval suites through the real app (multipart, S3, Postgres) and the built CLI: every
 * published format, a sample, k-shot prompts, and malformed records refused with nothing stored.
 */
describe('evals: benchmark import (e2e)', () => {
  jest.setTimeout(120_000);
  let app: TestApp;
  let key: string;
  let projectId: string;
  let prisma: PrismaService;

  const importFile = async (file: string, fields: Record<string, string>, body?: string) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('file', new Blob([body ?? readFileSync(path.join(FIXTURES, file))]), file);
    const res = await fetch(`${app.url}/v1/evals/suites/import`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    return { status: res.status, body: (await res.json()) as any };
  };
  const items = async (suite: any) => {
    const res = await fetch(`${app.url}/v1/files/${suite.dataset_id}/content`, { headers: { authorization: `Bearer ${key}` } });
    return (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
  };

  beforeAll(async () => {
    app = await startTestApp({ EVAL_SUITE_MAX_ITEMS: '5' });
    prisma = app.started.app.get(PrismaService);
    ({ key, id: projectId } = await newProject(app, 'import e2e'));
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each([
    ['mmlu', 'abstract_algebra_test.csv', 5, 'multiple_choice'], // 6 records: over the cap of 5, so sampled below
    ['mmlu', 'mmlu-hf.jsonl', 3, 'multiple_choice'],
    ['gsm8k', 'gsm8k-test.jsonl', 5, 'numeric'],
    ['arc', 'ARC-Challenge-Test.jsonl', 5, 'multiple_choice'],
    ['arc', 'arc-hf.jsonl', 3, 'multiple_choice'],
    ['hellaswag', 'hellaswag_val.jsonl', 3, 'multiple_choice'],
    ['hellaswag', 'hellaswag-hf.jsonl', 2, 'multiple_choice'],
    ['chat', 'chat-eval.jsonl', 2, 'exact_match'],
  ])('imports %s from %s: the suite with items = its records and the scorer of its format', async (format, file, n, scorer) => {
    const name = file.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const limit: Record<string, string> = file === 'abstract_algebra_test.csv' ? { limit: '5', seed: '3' } : {};
    const res = await importFile(file, { name, format, ...limit });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ object: 'eval.suite', name, items: n, scorer: { type: scorer } });
    expect(await items(res.body)).toHaveLength(n);
  });

  it('samples with limit and seed (the same seed, the same items) and builds k-shot prompts from dev', async () => {
    const dev = readFileSync(path.join(FIXTURES, 'abstract_algebra_dev.csv'), 'utf8');
    const a = await importFile('abstract_algebra_test.csv', { name: 'aa-a', format: 'mmlu', limit: '3', seed: '11', shots: '5', dev });
    const b = await importFile('abstract_algebra_test.csv', { name: 'aa-b', format: 'mmlu', limit: '3', seed: '11', shots: '5', dev });
    expect([a.status, b.status]).toEqual([201, 201]);
    // Same content: one dataset (content-addressed), two suites.
    expect(b.body.dataset_id).toBe(a.body.dataset_id);
    const got = await items(a.body);
    expect(got).toHaveLength(3);
    expect(got[0].prompt.startsWith('The following are multiple choice questions (with answers) about abstract algebra.\n\nFind the characteristic of the ring 2Z.')).toBe(true);
    expect(got[0].prompt.split('\nAnswer:')).toHaveLength(7); // five solved, the question's own
  });

  it.each([
    ['a record with a bad answer letter', { name: 'bad-1', format: 'mmlu' }, 'ok,a,b,c,d,A\n"q, with a comma",a,b,c,d,F\n', "line 2: 'answer'", 'file.line[2].answer'],
    ['a GSM8K answer without ####', { name: 'bad-2', format: 'gsm8k' }, '{"question": "q", "answer": "12"}\n', "line 1: 'answer'", 'file.line[1].answer'],
    ['an ARC key that is no label', { name: 'bad-3', format: 'arc' }, '{"question": "q", "choices": {"text": ["a", "b"], "label": ["1", "2"]}, "answerKey": "3"}\n', "line 1: 'answerKey'", 'file.line[1].answerKey'],
    ['more records than the cap, without limit', { name: 'bad-4', format: 'mmlu' }, readFileSync(path.join(FIXTURES, 'abstract_algebra_test.csv'), 'utf8'), 'more than 5 records', 'limit'],
    ['an unknown format', { name: 'bad-5', format: 'squad' }, '{}\n', "'format'", 'format'],
    ['shots without dev', { name: 'bad-6', format: 'mmlu', shots: '2' }, 'q,a,b,c,d,A\n', "needs 'dev'", 'dev'],
  ])('refuses %s with a 400 naming it; nothing is stored', async (_what, fields, body, message, param) => {
    const before = await prisma.dataset.count({ where: { projectId } });
    const res = await importFile('x_test.csv', fields, body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
    expect(res.body.error.param).toBe(param);
    expect(await prisma.dataset.count({ where: { projectId } })).toBe(before);
    expect(await prisma.evalSuite.count({ where: { projectId, name: fields.name } })).toBe(0);
  });

  it('refuses a file sent before its fields, naming the field', async () => {
    const form = new FormData();
    form.append('file', new Blob(['q,a,b,c,d,A\n']), 'x.csv');
    form.append('name', 'late');
    form.append('format', 'mmlu');
    const res = await fetch(`${app.url}/v1/evals/suites/import`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ param: 'name', message: expect.stringContaining("send the form fields before 'file'") });
  });

  it('imports with the CLI: loraplane evals suites import NAME --format F FILE', async () => {
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'evals', 'suites', 'import', 'gsm8k-cli', '--format', 'gsm8k', '--shots', '2', '--dev', path.join(FIXTURES, 'gsm8k-train.jsonl'), path.join(FIXTURES, 'gsm8k-test.jsonl')], {
        env: { ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key },
      }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
    });
    expect(out).toMatchObject({ code: 0 });
    expect(out.stdout).toMatch(/^gsm8k-cli evalsuite-\S+: 5 items, scorer \{"type":"numeric"/);
    const suite = await prisma.evalSuite.findFirstOrThrow({ where: { projectId, name: 'gsm8k-cli' } });
    const [first] = await items({ dataset_id: suite.datasetId });
    expect(first.prompt).toContain('#### 72\n\nQuestion: Weng earns');
    expect(first.reference).toBe('18');
  });
});
