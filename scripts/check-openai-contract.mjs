#!/usr/bin/env node
// Usage: npm run check:openai-contract -- PATH_TO_openai-openapi.json [--model NAME] [--timeout-s 180]
//
// Drives a RUNNING loraplane (LORAPLANE_URL, default http://localhost:8080; LORAPLANE_API_KEY) through every
// OpenAI-compatible route (files, uploads, fine-tuning jobs, models, chat completions and completions, streamed
// chunks included, error envelopes) and validates each answer against OpenAI's published OpenAPI document.
// Starts nothing itself. Prints every mismatch with its route and JSON path; exits 1 when there is any.
// The document: https://github.com/openai/openai-openapi (the `openapi.yaml`/json of a release; 2.3.0 was checked).
import contractLib from './lib/openai-contract.cjs';

const { loadContract } = contractLib;

const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const documentPath = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!documentPath) {
  console.error('usage: check-openai-contract PATH_TO_DOCUMENT [--model NAME] [--timeout-s N]');
  process.exit(2);
}
const BASE = (process.env.LORAPLANE_URL ?? 'http://localhost:8080').replace(/\/$/, '');
const KEY = process.env.LORAPLANE_API_KEY;
if (!KEY) {
  console.error('LORAPLANE_API_KEY is not set');
  process.exit(2);
}
const TIMEOUT_MS = Number(flag('timeout-s', 180)) * 1000;
const contract = loadContract(documentPath);
const mismatches = [];
let checked = 0;
const note = (line) => console.error(`[contract] ${line}`);

function report(route, problems) {
  checked += 1;
  for (const p of problems) mismatches.push(`${route}  ${p.path}  ${p.message}`);
}

/** Validates one JSON answer against the document: the route's own schema, or ErrorResponse for errors. */
function check(method, template, status, body, contentType = 'application/json') {
  const route = `${method} /v1${template} -> ${status}`;
  const ref = status >= 400 ? '#/components/schemas/ErrorResponse' : contract.routeSchemaRef(method, template, status, contentType);
  if (!ref) return report(route, [{ path: '$', message: 'the document defines no JSON schema for this answer' }]);
  report(route, contract.validate(ref, body));
}

async function call(method, template, params, { body, form, expect } = {}) {
  const url = BASE + '/v1' + template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(params[k]));
  const headers = { authorization: `Bearer ${KEY}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: form ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const json = await res.json();
  check(method, template, res.status, json);
  if (expect !== undefined && res.status !== expect) {
    throw new Error(`${method} ${template}: expected ${expect}, got ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
  }
  return json;
}

/** Reads a server-sent event stream and validates every `data:` chunk but the closing [DONE]. */
async function streamed(template, body, chunkSchemaOf) {
  const res = await fetch(`${BASE}/v1${template}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) return check('POST', template, res.status, await res.json());
  const ref = chunkSchemaOf(contract.routeSchemaRef('POST', template, 200, 'text/event-stream'));
  const text = await res.text();
  let chunks = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    chunks += 1;
    report(`POST /v1${template} (stream) chunk ${chunks}`, contract.validate(ref, JSON.parse(line.slice(6))));
  }
  if (chunks === 0) mismatches.push(`POST /v1${template} (stream)  $  no data chunk in the stream`);
  if (!text.trimEnd().endsWith('data: [DONE]')) mismatches.push(`POST /v1${template} (stream)  $  the stream does not end with data: [DONE]`);
}

const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const INTENTS = ['refund', 'shipping', 'cancel', 'invoice'];
const QUESTIONS = ['I want my money back', 'where is my parcel', 'stop my subscription', 'send me the bill', 'please return my payment', 'the package is late'];
const trainingRows = Array.from({ length: 24 }, (_, i) => ({
  messages: [
    { role: 'user', content: `${QUESTIONS[i % QUESTIONS.length]} (${i})` },
    { role: 'assistant', content: INTENTS[i % INTENTS.length] },
  ],
}));
const fileForm = (text, name) => {
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob([text]), name);
  return form;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

async function files() {
  const text = jsonl(trainingRows);
  const file = await call('POST', '/files', {}, { form: fileForm(text, 'contract-train.jsonl'), expect: 200 });
  await call('GET', '/files/{file_id}', { file_id: file.id }, { expect: 200 });
  await call('GET', '/files', {}, { expect: 200 });
  const content = await fetch(`${BASE}/v1/files/${file.id}/content`, { headers: { authorization: `Bearer ${KEY}` } });
  checked += 1;
  const got = await content.text();
  if (content.status !== 200) mismatches.push(`GET /v1/files/{file_id}/content -> ${content.status}  $  expected 200`);
  if (!content.headers.get('content-type')) mismatches.push('GET /v1/files/{file_id}/content  headers  no content-type');
  if (got !== text) mismatches.push('GET /v1/files/{file_id}/content  $  the bytes differ from what was uploaded');
  const other = await call('POST', '/files', {}, { form: fileForm(jsonl(trainingRows.slice(0, 12)), 'contract-delete.jsonl'), expect: 200 });
  await call('DELETE', '/files/{file_id}', { file_id: other.id }, { expect: 200 });
  await call('GET', '/files/{file_id}', { file_id: 'file-doesnotexist' }, { expect: 404 });
  return file;
}

async function uploads() {
  const bytes = Buffer.from(jsonl(trainingRows.slice(0, 16)));
  const body = { bytes: bytes.length, filename: 'contract-upload.jsonl', mime_type: 'application/jsonl', purpose: 'fine-tune' };
  const upload = await call('POST', '/uploads', {}, { body, expect: 200 });
  const parts = [];
  for (const piece of [bytes.subarray(0, 100), bytes.subarray(100)]) {
    const form = new FormData();
    form.append('data', new Blob([piece]), 'part');
    parts.push(await call('POST', '/uploads/{upload_id}/parts', { upload_id: upload.id }, { form, expect: 200 }));
  }
  await call('POST', '/uploads/{upload_id}/complete', { upload_id: upload.id }, { body: { part_ids: parts.map((p) => p.id) }, expect: 200 });
  const cancelled = await call('POST', '/uploads', {}, { body, expect: 200 });
  await call('POST', '/uploads/{upload_id}/cancel', { upload_id: cancelled.id }, { expect: 200 });
}

async function fineTuning(file) {
  const create = { model: 'tiny-lora', training_file: file.id, suffix: 'contract' };
  const job = await call('POST', '/fine_tuning/jobs', {}, { body: create, expect: 200 });
  await call('GET', '/fine_tuning/jobs', {}, { expect: 200 });
  const toCancel = await call('POST', '/fine_tuning/jobs', {}, { body: { ...create, suffix: 'contract-cancel' }, expect: 200 });
  await call('POST', '/fine_tuning/jobs/{fine_tuning_job_id}/cancel', { fine_tuning_job_id: toCancel.id }, { expect: 200 });
  const done = await until(`job ${job.id} to finish`, async () => {
    const j = await call('GET', '/fine_tuning/jobs/{fine_tuning_job_id}', { fine_tuning_job_id: job.id }, { expect: 200 });
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) && j;
  });
  if (done.status !== 'succeeded') throw new Error(`job ${job.id} ended ${done.status}: ${JSON.stringify(done.error)}`);
  await call('GET', '/fine_tuning/jobs/{fine_tuning_job_id}/events', { fine_tuning_job_id: job.id }, { expect: 200 });
  await call('GET', '/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints', { fine_tuning_job_id: job.id }, { expect: 200 });
  await call('POST', '/fine_tuning/jobs', {}, { body: { ...create, training_file: 'file-doesnotexist' }, expect: 400 });
  return done;
}

/** The model to call: --model, else the job's fine-tuned model once it is callable (an auto-deploy pool). */
async function chatModel(job) {
  const chosen = flag('model');
  if (chosen) return chosen;
  const model = job.fine_tuned_model;
  // Listed once registered; answered once a replica has loaded it (503 with Retry-After until then, which the
  // SDKs retry): wait for that as a client would.
  await until(`${model} to be callable (start a pool with auto_deploy, or pass --model)`, async () => {
    const res = await fetch(`${BASE}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
    });
    check('POST', '/chat/completions', res.status, await res.json());
    return res.status === 200;
  });
  return model;
}

async function inference(model) {
  await call('GET', '/models/{model}', { model }, { expect: 200 });
  const messages = [{ role: 'user', content: 'where is my parcel' }];
  await call('POST', '/chat/completions', {}, { body: { model, messages, max_tokens: 8, temperature: 0 }, expect: 200 });
  await streamed('/chat/completions', { model, messages, max_tokens: 8, stream: true, stream_options: { include_usage: true } }, (ref) => ref);
  await call('POST', '/completions', {}, { body: { model, prompt: 'where is my parcel', max_tokens: 8 }, expect: 200 });
  // The document gives completions one schema for answers and streamed chunks alike; chunks may say
  // finish_reason null until the last, as OpenAI's own stream does (scripts/lib/openai-contract.cjs).
  await streamed('/completions', { model, prompt: 'where is my parcel', max_tokens: 8, stream: true }, () => contract.streamedCompletionChunkRef);
  await call('POST', '/chat/completions', {}, { body: { model }, expect: 400 });
  await call('POST', '/chat/completions', {}, { body: { model: 'no-such-model', messages }, expect: 404 });
}

try {
  note(`document ${contract.version}; instance ${BASE}`);
  await call('GET', '/models', {}, { expect: 200 });
  const file = await files();
  await uploads();
  const job = await fineTuning(file);
  const model = await chatModel(job);
  await inference(model);
  if (model === job.fine_tuned_model) await call('DELETE', '/models/{model}', { model }, { expect: 200 });
} catch (error) {
  mismatches.push(`(drive)  $  ${error.message}`);
}
for (const line of mismatches) console.log(line);
console.log(`${checked} answers checked against OpenAI's document ${contract.version}: ${mismatches.length} mismatch(es)`);
process.exit(mismatches.length ? 1 : 0);
