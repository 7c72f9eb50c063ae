#!/usr/bin/env node
/**
 * npm run bench:tiny-lora [-- --n=360 --heldout=200 --seed=1 --docker --only=accuracy,e2e,generation]
 * The tiny-lora DEVELOPMENT model (it says nothing about GPT-OSS), with the job defaults the API resolves for n
 * examples (epochs clamp(ceil(2000 / n), 3, 50), batch 8, lr 0.05, r 8, alpha 16, dropout 0):
 *  1. held-out exact match of the greedy answer, base vs adapter, on each task: ticket routing, intents outside any
 *     word list, multiword/hyphenated/accented answers, order numbers copied from the input; and DPO (greedy answer
 *     = the preferred output) at the job's defaults (beta 0.1, rpo_alpha 1), and with the pure DPO loss (rpo_alpha 0);
 *  2. a whole default job end to end: the trainer process (`node jobs/tiny-lora/trainer.js`, the image's command)
 *     from start to exit, downloading through a presigned GET and uploading through a presigned POST to a local S3
 *     (s3rver); with --docker also in the trainer image (scripts/lib/tiny-lora-image.mjs) under production's flags;
 *  3. generating a 16-token answer: CPU time per answer (p50 of 500), with an adapter loaded.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { transformFileSync } from '@swc/core';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ROOT, log, p50 } from './lib/bench.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const require = createRequire(import.meta.url);
const trainer = require('../jobs/tiny-lora/trainer.js');
const model = require('../jobs/tiny-lora/model.js');
const S3rver = require('s3rver');

const flag = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const N = Number(flag('n', 360));
const HELD_OUT = Number(flag('heldout', 200));
const SEED = Number(flag('seed', 1));
const DOCKER = process.argv.includes('--docker');
const EPOCHS = Math.min(50, Math.max(3, Math.ceil(2000 / N)));
const LORA = { r: 8, alpha: 16, dropout: 0, target_modules: ['lm_head'] };
const JOB = { seed: SEED, n_epochs: EPOCHS, batch_size: 8, learning_rate: 0.05, lora: LORA };

/** The fixtures are TypeScript with no imports: compile them in memory. */
function loadFixture(name) {
  const { code } = transformFileSync(path.join(ROOT, 'test/fixtures', name), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } });
  const module = { exports: {} };
  new Function('module', 'exports', code)(module, module.exports);
  return module.exports;
}
const tickets = loadFixture('tiny-task.ts');
const tasks = loadFixture('tiny-lm-tasks.ts');

const exactMatch = (heldOut, adapter) => heldOut.filter((e) => model.predict(e.messages.slice(0, 2), adapter).answer === e.label).length / heldOut.length;
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const cpuMs = (since) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

async function accuracy() {
  console.log(`tiny-lora (development model): held-out exact match after a default job, n=${N} (${EPOCHS} epochs, batch 8, lr 0.05, r 8, alpha 16), seed ${SEED}`);
  const splits = [
    ['ticket routing', tickets.makeTicketSplit({ nTrain: N, nHeldOut: HELD_OUT, seed: SEED }), 'supervised', JOB],
    ...tasks.TINY_TASKS.map((t) => [t, tasks.makeTaskSplit(t, { nTrain: N, nHeldOut: HELD_OUT, seed: SEED }), 'supervised', JOB]),
    // DPO at the job's defaults for tiny-lora (beta 0.1, rpo_alpha 1), and the pure DPO loss (rpo_alpha 0) beside it:
    // from a noise base, pure DPO pushes the rejected answer down by displacing likelihood into garbage bytes.
    ['dpo (intents)', tasks.makePreferenceSplit({ nTrain: N, nHeldOut: HELD_OUT, seed: SEED }), 'dpo', { ...JOB, beta: 0.1, rpo_alpha: 1 }],
    ['dpo, rpo_alpha 0', tasks.makePreferenceSplit({ nTrain: N, nHeldOut: HELD_OUT, seed: SEED }), 'dpo', { ...JOB, beta: 0.1, rpo_alpha: 0 }],
  ];
  for (const [name, split, method, options] of splits) {
    const cpu = process.cpuUsage();
    const started = Date.now();
    const trained = await trainer.train(trainer.examplesFromJsonl(split.trainJsonl, 'training file', method), options);
    const line = `${name.padEnd(16)} held-out n=${split.heldOut.length}  base ${pct(exactMatch(split.heldOut, null)).padStart(6)}  adapter ${pct(exactMatch(split.heldOut, trained)).padStart(6)}`;
    console.log(`${line}  (training ${cpuMs(cpu).toFixed(0)} ms CPU, ${Date.now() - started} ms wall)`);
  }
}

/** A local S3 with the training file, its presigned GET and a presigned POST for the output, as the control plane makes them. */
async function jobSpec(s3, bucket, jsonl) {
  const key = `bench/${Date.now()}/train.jsonl`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: jsonl }));
  const prefix = `bench/${Date.now()}/out/`;
  const post = await createPresignedPost(s3, { Bucket: bucket, Key: `${prefix}\${filename}`, Conditions: [['content-length-range', 0, 64 << 20]], Expires: 600 });
  const { key: _key, ...fields } = post.fields; // the trainer sets each file's key
  return {
    contract_version: 1, job_id: 'ftjob-bench', attempt: 1, model: { name: 'tiny-lora', weights: model.BASE_SEED }, method: 'supervised', seed: SEED,
    hyperparameters: { n_epochs: EPOCHS, batch_size: 8, learning_rate: 0.05, lora: LORA },
    data: { training_file: { url: await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 }), sha256: createHash('sha256').update(jsonl).digest('hex'), bytes: Buffer.byteLength(jsonl) }, validation_file: null },
    output: { url: post.url, fields, key_prefix: prefix, max_bytes: 64 << 20, expires_at: Math.floor(Date.now() / 1000) + 600 },
  };
}

/** Wall time of a command to its exit, and (through /usr/bin/time) the CPU time it used. */
function timed(bin, args, env) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'cpu-seconds %U %S', bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const cpu = /cpu-seconds ([\d.]+) ([\d.]+)/.exec(err);
      if (code !== 0 || !out.includes('"artifact"') || !cpu) reject(new Error(`trainer exited ${code}: ${out.slice(-300)} ${err.slice(-300)}`));
      else resolve({ ms, cpuMs: (Number(cpu[1]) + Number(cpu[2])) * 1000 });
    });
  });
}

const summary = (runs) =>
  `wall p50 ${p50(runs.map((r) => r.ms)).toFixed(0)} ms, CPU p50 ${p50(runs.map((r) => r.cpuMs)).toFixed(0)} ms (runs: ${runs.map((r) => `${r.ms.toFixed(0)}/${r.cpuMs.toFixed(0)}`).join(', ')} ms wall/CPU)`;

async function endToEnd() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tiny-lora-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir });
  const { port } = await server.run();
  const s3 = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
  const jsonl = tickets.makeTicketDataset({ n: N, seed: SEED });
  try {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const spec = await jobSpec(s3, 'bench', jsonl);
      const scratch = fs.mkdtempSync(path.join(dir, 'scratch-'));
      runs.push(await timed(process.execPath, [path.join(ROOT, 'jobs/tiny-lora/trainer.js')], { PATH: process.env.PATH, LORAPLANE_JOB_SPEC: JSON.stringify(spec), LORAPLANE_SCRATCH_DIR: scratch }));
    }
    console.log(`default job end to end (${N} ticket examples, ${EPOCHS} epochs; trainer process start -> exit 0, download and upload included): ${summary(runs)}`);
    if (DOCKER) await inDocker(s3, jsonl);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function inDocker(s3, jsonl) {
  const tag = process.env.TINY_LORA_IMAGE || 'loraplane/tiny-lora:bench';
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts/build-tiny-lora-image.mjs'), `--tag=${tag}`], { cwd: ROOT });
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const spec = await jobSpec(s3, 'bench', jsonl);
    const hardening = ['--rm', '--init', '--read-only', '--tmpfs', '/scratch', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--network', 'host', '--memory', '512m', '--cpus', '1'];
    runs.push(await timed('docker', ['run', ...hardening, '-e', `LORAPLANE_JOB_SPEC=${JSON.stringify(spec)}`, tag], process.env));
  }
  // CPU here is the docker client's, not the container's: only the wall time means something.
  console.log(`default job end to end in the image (docker run -> exit 0, 1 CPU, 512 MB): wall p50 ${p50(runs.map((r) => r.ms)).toFixed(0)} ms`);
}

async function generationSpeed() {
  const split = tasks.makeTaskSplit('phrases', { nTrain: N, nHeldOut: 100, seed: SEED });
  const adapter = await trainer.train(trainer.examplesFromJsonl(split.trainJsonl), JOB);
  // 'no action needed' is 16 bytes: greedy, it is a 16-token answer (the 17th token, the end, is not generated).
  const messages = split.heldOut.find((e) => e.label === 'no action needed').messages.slice(0, 2);
  for (const [what, topK] of [['greedy', 0], ['greedy, top-5 logprobs', 5]]) {
    const answer = () => model.generate(messages, adapter, { maxTokens: 16, topK });
    for (let i = 0; i < 50; i++) answer();
    const samples = [];
    let text = '';
    for (let i = 0; i < 500; i++) {
      const cpu = process.cpuUsage();
      const out = answer();
      samples.push(cpuMs(cpu));
      text = Buffer.from(out.tokens.map((t) => t.id)).toString();
    }
    console.log(`generating a 16-token answer (${JSON.stringify(text)}, ${what}, adapter r 8): CPU p50 ${p50(samples).toFixed(3)} ms over ${samples.length} answers`);
  }
}

const only = flag('only', 'accuracy,e2e,generation').split(',');
if (only.includes('accuracy')) {
  log('training the tasks (this takes a minute on a busy machine)');
  await accuracy();
}
if (only.includes('e2e')) await endToEnd();
if (only.includes('generation')) await generationSpeed();
