'use strict';
/**
 * The tiny-lora trainer: the container entry point of the DEVELOPMENT model (see model.js). It follows
 * jobs/CONTRACT.md exactly like the GPT-OSS trainer does: JobSpec in LORAPLANE_JOB_SPEC, data through presigned GET
 * URLs, the adapter out through a presigned POST, one JSON event per stdout line, TRAINER_EXIT codes.
 *
 * Training is real: LoRA factors A [r, D] and B [V, r] on the frozen lm_head, softmax cross-entropy over the answer
 * word, minibatch Adam. Every random choice (A's init, shuffling, dropout masks) comes from PRNG streams seeded by
 * spec.seed, so the same spec and data give a byte-identical adapter.
 *
 * Plain CommonJS with no npm dependencies: the image holds only the node binary and the files of this folder.
 */
// Module-local bindings of the globals used in hot loops. Inside a vm context (Jest runs tests in one) every global
// lookup goes through an interceptor and training runs ~50x slower; a module-level const is a plain closure variable.
const { Math, Date, Float32Array, Float64Array } = globalThis;
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const path = require('node:path');
const crypto = require('node:crypto');
const readline = require('node:readline');
const { Readable, Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const model = require('./model');
const safetensors = require('./safetensors');

const CONTRACT_VERSION = 1;
/** Mirrors TRAINER_EXIT in src/training/contract/job-contract.ts. */
const TRAINER_EXIT = {
  ok: 0,
  internal: 1,
  invalid_spec: 2,
  invalid_data: 3,
  data_unreachable: 4,
  upload_failed: 5,
  cancelled: 143,
};
/** The only linear module tiny-lora has; "all-linear" (PEFT's shorthand) therefore means the same thing here. */
const ACCEPTED_TARGETS = new Set([model.TARGET_MODULE, 'all-linear']);
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
const HTTP_ATTEMPTS = 3;
/** Per request; generous because a large dataset is one GET, and a hung connection must not hold a GPU forever. */
const HTTP_TIMEOUT_MS = 10 * 60 * 1000;
const BASE_CACHE_BYTES = 64 * 1024 * 1024;

/** A failure the contract has a code for; anything else thrown is reported as `internal`. */
class TrainerError extends Error {
  constructor(code, message, { line, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'TrainerError';
    this.code = code;
    this.line = line;
  }
}

function stdoutEmit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Diagnostics that are not events go to stderr, so stdout stays a clean event stream. */
function logDiag(message) {
  process.stderr.write(`[tiny-lora] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Spec validation: hand-written checks that mirror jobSpecSchema (no zod in the image), plus what this trainer can do.

function specChecker() {
  const problems = [];
  const at = (obj, key) => (obj !== null && typeof obj === 'object' ? obj[key] : undefined);
  const check = {
    problems,
    object(value, where) {
      const ok = value !== null && typeof value === 'object' && !Array.isArray(value);
      if (!ok) problems.push(`${where}: expected an object`);
      return ok;
    },
    string(value, where) {
      if (typeof value !== 'string') problems.push(`${where}: expected a string`);
    },
    number(value, where, { int = false, min, max, positive = false } = {}) {
      if (typeof value !== 'number' || !Number.isFinite(value)) return problems.push(`${where}: expected a number`);
      if (int && !Number.isInteger(value)) problems.push(`${where}: expected an integer`);
      if (positive && !(value > 0)) problems.push(`${where}: must be > 0`);
      if (min !== undefined && value < min) problems.push(`${where}: must be >= ${min}`);
      if (max !== undefined && value > max) problems.push(`${where}: must be <= ${max}`);
    },
    url(value, where) {
      let ok = false;
      try {
        ok = typeof value === 'string' && ['http:', 'https:'].includes(new URL(value).protocol);
      } catch {
        ok = false; // new URL throws on malformed input; that is exactly the "invalid" answer we report below
      }
      if (!ok) problems.push(`${where}: expected an http(s) URL`);
    },
    sha256(value, where) {
      if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) problems.push(`${where}: expected 64 lowercase hex digits`);
    },
    at,
  };
  return check;
}

function checkDataFile(c, file, where) {
  if (!c.object(file, where)) return;
  c.url(file.url, `${where}.url`);
  c.sha256(file.sha256, `${where}.sha256`);
  c.number(file.bytes, `${where}.bytes`, { int: true, min: 0 });
}

/**
 * Validate a parsed JobSpec. Throws TrainerError('invalid_spec') listing every problem found.
 * @returns the spec, unchanged
 */
function validateSpec(spec) {
  const c = specChecker();
  if (c.object(spec, 'spec')) {
    if (spec.contract_version !== CONTRACT_VERSION) {
      c.problems.push(`contract_version: this trainer speaks version ${CONTRACT_VERSION}, got ${JSON.stringify(spec.contract_version)}`);
    }
    c.string(spec.job_id, 'job_id');
    c.number(spec.attempt, 'attempt', { int: true, min: 1 });
    if (c.object(spec.model, 'model')) {
      c.string(spec.model.name, 'model.name');
      if (spec.model.weights !== undefined) c.string(spec.model.weights, 'model.weights');
      // The weights are built in (generated from BASE_SEED); a different ref means the control plane expects
      // another base model than this image holds, and an adapter trained here would not fit it.
      if (typeof spec.model.weights === 'string' && spec.model.weights !== model.BASE_SEED) {
        c.problems.push(`model.weights: this image holds ${model.BASE_SEED}, got ${spec.model.weights}`);
      }
      if (typeof spec.model.name === 'string' && spec.model.name !== model.MODEL_NAME) {
        c.problems.push(`model.name: this trainer only trains ${model.MODEL_NAME}, got ${spec.model.name}`);
      }
    }
    if (!['supervised', 'dpo'].includes(spec.method)) c.problems.push('method: expected supervised or dpo');
    else if (spec.method !== 'supervised') c.problems.push(`method: ${model.MODEL_NAME} supports supervised only`);
    c.number(spec.seed, 'seed', { int: true });
    checkHyperparameters(c, spec.hyperparameters);
    if (c.object(spec.data, 'data')) {
      checkDataFile(c, spec.data.training_file, 'data.training_file');
      if (spec.data.validation_file !== null) checkDataFile(c, spec.data.validation_file, 'data.validation_file');
    }
    checkOutput(c, spec.output);
    if (spec.checkpoint_every_steps !== undefined) c.number(spec.checkpoint_every_steps, 'checkpoint_every_steps', { int: true, min: 1 });
    if (spec.stop_grace_seconds !== undefined) c.number(spec.stop_grace_seconds, 'stop_grace_seconds', { int: true, min: 1 });
    if (spec.resume_from !== undefined && spec.resume_from !== null) checkResume(c, spec.resume_from);
  }
  if (c.problems.length > 0) throw new TrainerError('invalid_spec', `invalid job spec: ${c.problems.join('; ')}`);
  return spec;
}

function checkHyperparameters(c, hp) {
  if (!c.object(hp, 'hyperparameters')) return;
  c.number(hp.n_epochs, 'hyperparameters.n_epochs', { int: true, min: 1 });
  c.number(hp.batch_size, 'hyperparameters.batch_size', { int: true, min: 1 });
  c.number(hp.learning_rate, 'hyperparameters.learning_rate', { positive: true });
  const lora = hp.lora;
  if (!c.object(lora, 'hyperparameters.lora')) return;
  c.number(lora.r, 'hyperparameters.lora.r', { int: true, min: 1, max: 512 });
  c.number(lora.alpha, 'hyperparameters.lora.alpha', { positive: true });
  c.number(lora.dropout, 'hyperparameters.lora.dropout', { min: 0, max: 1 });
  const targets = lora.target_modules;
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || t.length === 0)) {
    c.problems.push('hyperparameters.lora.target_modules: expected a non-empty array of names');
  } else if (targets.some((t) => !ACCEPTED_TARGETS.has(t))) {
    c.problems.push(`hyperparameters.lora.target_modules: ${model.MODEL_NAME} has only ${model.TARGET_MODULE} (or all-linear)`);
  }
}

function checkResume(c, resume) {
  if (!c.object(resume, 'resume_from')) return;
  c.number(resume.step, 'resume_from.step', { int: true, min: 1 });
  if (!Array.isArray(resume.files) || resume.files.length === 0) return void c.problems.push('resume_from.files: expected a non-empty array');
  resume.files.forEach((f, i) => {
    checkDataFile(c, f, `resume_from.files[${i}]`);
    if (c.at(f, 'name') !== undefined || c.object(f, `resume_from.files[${i}]`)) {
      if (typeof f.name !== 'string' || f.name === '') c.problems.push(`resume_from.files[${i}].name: expected a non-empty string`);
    }
  });
}

function checkOutput(c, out) {
  if (!c.object(out, 'output')) return;
  c.url(out.url, 'output.url');
  if (c.object(out.fields, 'output.fields')) {
    for (const [k, v] of Object.entries(out.fields)) c.string(v, `output.fields.${k}`);
  }
  c.string(out.key_prefix, 'output.key_prefix');
  c.number(out.max_bytes, 'output.max_bytes', { int: true, positive: true });
  c.number(out.expires_at, 'output.expires_at', { int: true });
}

function parseSpecText(text) {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new TrainerError('invalid_spec', 'LORAPLANE_JOB_SPEC is not set');
  }
  let spec;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    throw new TrainerError('invalid_spec', `LORAPLANE_JOB_SPEC is not JSON: ${err.message}`, { cause: err });
  }
  return validateSpec(spec);
}

// ---------------------------------------------------------------------------------------------------------------
// Data: download through presigned GET (verified), then parse chat JSONL line by line.

function isRetryableStatus(status) {
  return status === 429 || status >= 500;
}

async function sleep(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** One GET of `url` into `dest`, hashing on the way. Throws on network errors, including a body cut off midway. */
async function downloadOnce(url, dest) {
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel();
    return { status: res.status };
  }
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body), meter, fs.createWriteStream(dest));
  return { bytes, sha256: hash.digest('hex') };
}

function describeFetchError(err) {
  return `${err.message}${err.cause ? ` (${err.cause.code ?? err.cause.message})` : ''}`;
}

/** Download `file.url` to `dest`, retrying network errors and 5xx; the bytes and sha256 must match the spec. */
async function downloadVerified(file, dest, label) {
  let lastProblem = '';
  for (let attempt = 1; attempt <= HTTP_ATTEMPTS; attempt++) {
    if (attempt > 1) await sleep(250 * (attempt - 1));
    let got;
    try {
      got = await downloadOnce(file.url, dest);
    } catch (err) {
      lastProblem = describeFetchError(err);
      logDiag(`${label}: download attempt ${attempt} failed: ${lastProblem}`);
      continue;
    }
    if (got.status !== undefined) {
      lastProblem = `HTTP ${got.status}`;
      if (!isRetryableStatus(got.status)) break; // 403 = expired or wrong signature: retrying will not help
      continue;
    }
    if (got.bytes !== file.bytes || got.sha256 !== file.sha256) {
      throw new TrainerError(
        'data_unreachable',
        `${label}: downloaded ${got.bytes} bytes with sha256 ${got.sha256}, expected ${file.bytes} bytes with sha256 ${file.sha256}`,
      );
    }
    return;
  }
  throw new TrainerError('data_unreachable', `${label}: could not download: ${lastProblem}`);
}

const KNOWN_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/**
 * One chat-format line -> a training example. The input is every system/developer/user message before the LAST
 * assistant message; the target is that assistant message's content as one vocabulary word.
 * @returns {{ x: {idx: Int32Array, val: Float64Array}, target: number, tokens: number }}
 */
function parseExampleLine(text, lineNo, label) {
  const fail = (problem) => {
    throw new TrainerError('invalid_data', `${label} line ${lineNo}: ${problem}`, { line: lineNo });
  };
  let row;
  try {
    row = JSON.parse(text);
  } catch (err) {
    fail(`not valid JSON (${err.message})`);
  }
  if (row === null || typeof row !== 'object' || !Array.isArray(row.messages)) fail('expected an object with a "messages" array');
  const messages = row.messages;
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || !KNOWN_ROLES.has(m.role)) fail(`messages[${i}] has no valid role`);
  });
  let last = -1;
  for (let i = messages.length - 1; i >= 0 && last < 0; i--) if (messages[i].role === 'assistant') last = i;
  if (last < 0) fail('no assistant message to learn from');
  const answer = model.contentText(messages[last].content);
  const target = model.answerIndex(answer);
  if (target === null) {
    const shown = answer.length > 60 ? `${answer.slice(0, 60)}...` : answer;
    fail(`assistant answer ${JSON.stringify(shown)} is not a word of the ${model.MODEL_NAME} vocabulary (one word such as yes/no, positive/negative, a-e, 0-100, billing, sports, ...)`);
  }
  const inputs = messages.slice(0, last).filter((m) => model.INPUT_ROLES.has(m.role));
  if (!inputs.some((m) => m.role === 'user')) fail('no user message before the assistant answer');
  const inputText = inputs.map((m) => model.contentText(m.content)).join(' ');
  return { x: model.featurize(inputs), target, tokens: countTokens(inputText) + countTokens(answer) };
}

/** "Tokens" for throughput and billing are whitespace-separated words: the tiny model has no tokenizer. */
function countTokens(text) {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/u).length;
}

function examplesFromLines(lines, label) {
  const examples = [];
  lines.forEach((text, i) => {
    if (text.trim() !== '') examples.push(parseExampleLine(text, i + 1, label));
  });
  return requireExamples(examples, label);
}

/** Parse JSONL held in memory (tests, tools); the trainer itself streams files with readExamplesFile. */
function examplesFromJsonl(text, label = 'training file') {
  return examplesFromLines(text.split('\n'), label);
}

async function readExamplesFile(file, label) {
  const examples = [];
  const lines = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const text of lines) {
    lineNo += 1;
    if (text.trim() !== '') examples.push(parseExampleLine(text, lineNo, label));
  }
  return requireExamples(examples, label);
}

function requireExamples(examples, label) {
  if (examples.length === 0) throw new TrainerError('invalid_data', `${label} holds no examples`);
  return examples;
}

// ---------------------------------------------------------------------------------------------------------------
// Training: LoRA on lm_head, softmax cross-entropy, minibatch Adam, linear learning-rate decay (the HF default).

/** PEFT's default init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), B = 0. */
function initLora(r, seed) {
  const rand = model.rngFor('lora_A', seed);
  const bound = 1 / Math.sqrt(model.D);
  const A = new Float64Array(r * model.D);
  for (let i = 0; i < A.length; i++) A[i] = (rand() * 2 - 1) * bound;
  return { A, B: new Float64Array(model.V * r) };
}

function shuffledOrder(n, rand) {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Inverted dropout on the features that feed lora_A (PEFT applies lora_dropout to the LoRA branch input only). */
function dropoutFeatures(x, p, rand) {
  if (p <= 0) return x;
  const keep = 1 - p;
  const val = new Float64Array(x.val.length);
  for (let k = 0; k < val.length; k++) val[k] = keep > 0 && rand() < keep ? x.val[k] / keep : 0;
  return { idx: x.idx, val };
}

/** One example's forward pass: loss, correctness, and dLoss/dlogits (softmax - onehot). */
function forward(example, params, xLora) {
  const logits = example.base ? Float64Array.from(example.base) : model.baseLogits(example.x);
  const h = model.loraHidden(params.A, params.r, xLora);
  model.addLoraLogits(logits, params.B, params.r, params.scale, h);
  const logp = model.logSoftmax(logits);
  const grad = new Float64Array(logp.length);
  for (let v = 0; v < grad.length; v++) grad[v] = Math.exp(logp[v]);
  grad[example.target] -= 1;
  return { loss: -logp[example.target], correct: model.argmax(logits) === example.target, h, grad };
}

/** Accumulate dL/dB = scale * g h^T and dL/dA = (scale * B^T g) x^T, divided by the batch size. */
function accumulateGrads(grads, params, xLora, fw, batchSize) {
  const { r, scale, B } = params;
  const V = model.V;
  const D = model.D;
  const dh = new Float64Array(r);
  for (let v = 0; v < V; v++) {
    const g = (fw.grad[v] * scale) / batchSize;
    if (g === 0) continue;
    for (let j = 0; j < r; j++) {
      grads.B[v * r + j] += g * fw.h[j];
      dh[j] += g * B[v * r + j];
    }
  }
  for (let j = 0; j < r; j++) {
    for (let k = 0; k < xLora.idx.length; k++) grads.A[j * D + xLora.idx[k]] += dh[j] * xLora.val[k];
  }
}

function adamStep(param, grad, state, lr, t) {
  const { beta1, beta2, eps } = ADAM;
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    state.m[i] = beta1 * state.m[i] + (1 - beta1) * g;
    state.v[i] = beta2 * state.v[i] + (1 - beta2) * g * g;
    param[i] -= (lr * (state.m[i] / c1)) / (Math.sqrt(state.v[i] / c2) + eps);
  }
}

/** Mean loss and accuracy of the current parameters on a set of examples (no dropout). */
function evaluate(examples, params) {
  let loss = 0;
  let correct = 0;
  for (const ex of examples) {
    const fw = forward(ex, params, ex.x);
    loss += fw.loss;
    if (fw.correct) correct += 1;
  }
  return { loss: loss / examples.length, accuracy: correct / examples.length };
}

/**
 * W0 is frozen, so each example's base logits can be computed once and reused every epoch (3x faster). They cost
 * V doubles per example, so only sets that fit BASE_CACHE_BYTES are cached: the container may have 512 MB in all.
 * Cached or not, the numbers are the same, so the adapter bytes do not depend on it.
 */
function cacheBaseLogits(sets) {
  const count = sets.reduce((n, set) => n + set.length, 0);
  if (count * model.V * 8 > BASE_CACHE_BYTES) return;
  for (const set of sets) for (const ex of set) if (!ex.base) ex.base = model.baseLogits(ex.x);
}

const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Train a LoRA. Async only so that signals (SIGTERM) are handled between steps; the math is synchronous.
 *
 * Checkpoints: with hooks.checkpointEvery = N, hooks.onCheckpoint(state) is awaited after every N-th step (not the
 * last: the final adapter is the artifact), and after the current step when hooks.shouldStop() turns true; then
 * training ends with `stopped: true`. `state` (see snapshot) is everything a resumed run needs to continue exactly:
 * hooks.resume = that state makes the rest of the run, and the adapter, identical to an uninterrupted one.
 * @param {ReturnType<typeof parseExampleLine>[]} examples
 * @param {{ seed: number, n_epochs: number, batch_size: number, learning_rate: number,
 *           lora: { r: number, alpha: number, dropout: number } }} options
 * @param {{ validation?: object[], onMetrics?: (m: object) => void, logEvery?: number, checkpointEvery?: number,
 *           onCheckpoint?: (state: object) => Promise<void>, shouldStop?: () => boolean, resume?: object }} [hooks]
 * @returns {Promise<{ A: Float64Array, B: Float64Array, r: number, alpha: number, scale: number, trainedTokens: number,
 *           step: number, stopped: boolean }>}
 */
async function train(examples, options, hooks = {}) {
  const { seed, n_epochs: epochs, batch_size: batchSize, learning_rate: lr, lora } = options;
  const r = lora.r;
  const params = { r, alpha: lora.alpha, scale: lora.alpha / r, ...initLora(r, seed) };
  const adam = {
    A: { m: new Float64Array(params.A.length), v: new Float64Array(params.A.length) },
    B: { m: new Float64Array(params.B.length), v: new Float64Array(params.B.length) },
  };
  const shuffleRand = model.rngFor('shuffle', seed);
  const dropoutRand = model.rngFor('dropout', seed);
  const stepsPerEpoch = Math.ceil(examples.length / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const logEvery = hooks.logEvery ?? Math.max(1, Math.floor(totalSteps / 20));
  cacheBaseLogits([examples, hooks.validation ?? []]);
  // Reused every step: a rank-512 A has 2M entries, and a fresh gradient per step would churn the GC.
  const grads = { A: new Float64Array(params.A.length), B: new Float64Array(params.B.length) };

  let step = 0;
  let trainedTokens = 0;
  let window = { loss: 0, correct: 0, count: 0, tokens: 0, started: Date.now() };
  let startEpoch = 0;
  let startBatch = 0;
  let order = null;
  if (hooks.resume) {
    const s = hooks.resume;
    params.A.set(s.A);
    params.B.set(s.B);
    adam.A.m.set(s.adam.A.m);
    adam.A.v.set(s.adam.A.v);
    adam.B.m.set(s.adam.B.m);
    adam.B.v.set(s.adam.B.v);
    shuffleRand.setState(s.rng.shuffle);
    dropoutRand.setState(s.rng.dropout);
    ({ step, trained_tokens: trainedTokens } = s);
    window = { ...s.window, started: Date.now() };
    // A checkpoint at an epoch's last step continues with the next epoch, whose order the shuffle stream gives.
    if (s.next_batch < stepsPerEpoch) [startEpoch, startBatch, order] = [s.epoch, s.next_batch, s.order];
    else startEpoch = s.epoch + 1;
  }
  let lastYield = Date.now();
  for (let epoch = startEpoch; epoch < epochs; epoch++) {
    if (!order) order = shuffledOrder(examples.length, shuffleRand);
    for (let b = epoch === startEpoch ? startBatch : 0; b < stepsPerEpoch; b++) {
      const batch = order.slice(b * batchSize, (b + 1) * batchSize).map((i) => examples[i]);
      grads.A.fill(0);
      grads.B.fill(0);
      for (const ex of batch) {
        const xLora = dropoutFeatures(ex.x, lora.dropout, dropoutRand);
        const fw = forward(ex, params, xLora);
        accumulateGrads(grads, params, xLora, fw, batch.length);
        window.loss += fw.loss;
        window.correct += fw.correct ? 1 : 0;
        window.count += 1;
        window.tokens += ex.tokens;
        trainedTokens += ex.tokens;
      }
      step += 1;
      const stepLr = lr * (1 - (step - 1) / totalSteps);
      adamStep(params.A, grads.A, adam.A, stepLr, step);
      adamStep(params.B, grads.B, adam.B, stepLr, step);

      const epochEnd = b === stepsPerEpoch - 1;
      if (step % logEvery === 0 || epochEnd) {
        hooks.onMetrics?.(metricsEvent(step, totalSteps, stepsPerEpoch, stepLr, window, params, hooks.validation, epochEnd));
        window = { loss: 0, correct: 0, count: 0, tokens: 0, started: Date.now() };
      }
      if (Date.now() - lastYield > 20) {
        await yieldToEventLoop(); // lets a SIGTERM handler run
        lastYield = Date.now();
      }
      const stopping = hooks.shouldStop?.() === true;
      const due = hooks.checkpointEvery !== undefined && step % hooks.checkpointEvery === 0;
      if (hooks.onCheckpoint && step < totalSteps && (stopping || due)) {
        await hooks.onCheckpoint({
          step, total_steps: totalSteps, epoch, next_batch: b + 1, order, trained_tokens: trainedTokens,
          rng: { shuffle: shuffleRand.getState(), dropout: dropoutRand.getState() },
          window: { loss: window.loss, correct: window.correct, count: window.count, tokens: window.tokens },
          A: params.A, B: params.B, adam, r, alpha: lora.alpha, scale: params.scale,
        });
      }
      if (stopping && step < totalSteps) {
        return { A: params.A, B: params.B, r, alpha: lora.alpha, scale: params.scale, trainedTokens, step, stopped: true };
      }
    }
    order = null;
  }
  return { A: params.A, B: params.B, r, alpha: lora.alpha, scale: params.scale, trainedTokens, step, stopped: false };
}

/** A contract `metrics` event; validation runs at the end of each epoch (and so at the last step). */
function metricsEvent(step, totalSteps, stepsPerEpoch, lr, window, params, validation, epochEnd) {
  const seconds = Math.max((Date.now() - window.started) / 1000, 1e-3);
  const event = {
    type: 'metrics',
    step,
    total_steps: totalSteps,
    epoch: round(step / stepsPerEpoch, 4),
    train_loss: round(window.loss / window.count, 6),
    learning_rate: Number(lr.toPrecision(6)),
    train_mean_token_accuracy: round(window.correct / window.count, 6),
    tokens_per_second: round(window.tokens / seconds, 1),
  };
  if (validation && validation.length > 0 && epochEnd) {
    const v = evaluate(validation, params);
    event.valid_loss = round(v.loss, 6);
    event.valid_mean_token_accuracy = round(v.accuracy, 6);
  }
  return event;
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------------------------
// Output: a PEFT adapter directory, uploaded through the presigned POST.

function adapterConfig(lora) {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: model.MODEL_NAME,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [model.TARGET_MODULE],
    bias: 'none',
    modules_to_save: null,
    use_dora: false,
    use_rslora: false,
    fan_in_fan_out: false,
    inference_mode: true,
  };
}

/**
 * The adapter's files as bytes. F32 on disk (PEFT/vLLM load it as such); training runs in float64.
 * @returns {{ name: string, data: Buffer }[]}
 */
function adapterFiles(trained, lora) {
  const weights = safetensors.serialize(
    {
      [model.LORA_A_NAME]: { shape: [trained.r, model.D], data: Float32Array.from(trained.A) },
      [model.LORA_B_NAME]: { shape: [model.V, trained.r], data: Float32Array.from(trained.B) },
    },
    { format: 'pt' },
  );
  return [
    { name: 'adapter_config.json', data: Buffer.from(`${JSON.stringify(adapterConfig(lora), null, 2)}\n`) },
    { name: 'adapter_model.safetensors', data: weights },
  ];
}

async function writeFiles(dir, files) {
  await fsp.mkdir(dir, { recursive: true });
  for (const f of files) await fsp.writeFile(path.join(dir, f.name), f.data);
}

function sha256Hex(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** ": Code: Message" from an S3 XML error body; the raw body is not echoed (it ends up in user-visible job events). */
function s3ErrorSummary(body) {
  const field = (name) => new RegExp(`<${name}>([^<]{0,200})</${name}>`).exec(body)?.[1];
  const code = field('Code');
  return code ? `: ${code}${field('Message') ? `: ${field('Message')}` : ''}` : '';
}

/** POST one file with the presigned policy: every policy field, then key, then the file last (S3 requires it). */
async function uploadFile(output, file) {
  if (file.data.length > output.max_bytes) {
    throw new TrainerError('upload_failed', `${file.name} is ${file.data.length} bytes, over output.max_bytes ${output.max_bytes}`);
  }
  let lastProblem = '';
  for (let attempt = 1; attempt <= HTTP_ATTEMPTS; attempt++) {
    const form = new FormData();
    // The trainer chooses each file's key; a `key` left in fields would make the form carry two.
    for (const [k, v] of Object.entries(output.fields)) if (k.toLowerCase() !== 'key') form.append(k, v);
    form.append('key', output.key_prefix + file.name);
    form.append('file', new Blob([file.data]), file.name);
    try {
      const res = await fetch(output.url, { method: 'POST', body: form, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      lastProblem = `HTTP ${res.status}${s3ErrorSummary(await res.text())}`;
      if (!isRetryableStatus(res.status)) break;
    } catch (err) {
      lastProblem = describeFetchError(err);
    }
    logDiag(`upload of ${file.name} attempt ${attempt} failed: ${lastProblem}`);
    if (attempt < HTTP_ATTEMPTS) await sleep(250 * attempt);
  }
  throw new TrainerError('upload_failed', `upload of ${file.name} failed: ${lastProblem}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints (jobs/CONTRACT.md sections 7-8): the adapter so far, plus the exact state to resume from.

const STATE_FORMAT = 'tiny-lora-trainer-state';
const STATE_JSON = 'trainer_state.json';
const STATE_TENSORS = 'trainer_state.safetensors';

/** What a checkpoint must agree with to be resumed: the same data and the same training settings. */
function fingerprint(spec) {
  const hp = spec.hyperparameters;
  return {
    model: `${model.MODEL_NAME}/${model.BASE_SEED}`,
    training_file_sha256: spec.data.training_file.sha256,
    seed: spec.seed,
    n_epochs: hp.n_epochs,
    batch_size: hp.batch_size,
    learning_rate: hp.learning_rate,
    lora: { r: hp.lora.r, alpha: hp.lora.alpha, dropout: hp.lora.dropout },
  };
}

/**
 * A training state -> the checkpoint's files: the PEFT adapter as of this step (F32, registrable as an adapter
 * version), trainer_state.json (step, data order, PRNG states, the open metrics window) and
 * trainer_state.safetensors (the LoRA factors and Adam moments in F64, so nothing is rounded away).
 */
function checkpointFiles(state, spec) {
  const lora = spec.hyperparameters.lora;
  const json = {
    format: STATE_FORMAT,
    version: 1,
    fingerprint: fingerprint(spec),
    step: state.step,
    total_steps: state.total_steps,
    epoch: state.epoch,
    next_batch: state.next_batch,
    order: state.order,
    rng: state.rng,
    trained_tokens: state.trained_tokens,
    window: state.window,
  };
  const f64 = (data, shape) => ({ dtype: 'F64', shape, data });
  const tensors = safetensors.serialize({
    lora_A: f64(state.A, [state.r, model.D]),
    lora_B: f64(state.B, [model.V, state.r]),
    'adam.lora_A.m': f64(state.adam.A.m, [state.r, model.D]),
    'adam.lora_A.v': f64(state.adam.A.v, [state.r, model.D]),
    'adam.lora_B.m': f64(state.adam.B.m, [model.V, state.r]),
    'adam.lora_B.v': f64(state.adam.B.v, [model.V, state.r]),
  });
  return [
    ...adapterFiles(state, lora),
    { name: STATE_JSON, data: Buffer.from(`${JSON.stringify(json)}\n`) },
    { name: STATE_TENSORS, data: tensors },
  ];
}

/** Read a downloaded checkpoint back into a training state; TrainerError('invalid_spec') when it does not fit. */
function loadCheckpoint(dir, spec, resumeStep) {
  const bad = (problem) => new TrainerError('invalid_spec', `resume_from: ${problem}`);
  let json;
  let tensors;
  try {
    json = JSON.parse(fs.readFileSync(path.join(dir, STATE_JSON), 'utf8'));
    ({ tensors } = safetensors.deserialize(fs.readFileSync(path.join(dir, STATE_TENSORS))));
  } catch (err) {
    throw bad(`not a ${model.MODEL_NAME} checkpoint (${err.message})`);
  }
  if (json.format !== STATE_FORMAT || json.version !== 1) throw bad(`${STATE_JSON} is not a ${STATE_FORMAT} v1 file`);
  const want = fingerprint(spec);
  const differs = Object.keys(want).filter((k) => JSON.stringify(want[k]) !== JSON.stringify(json.fingerprint?.[k]));
  if (differs.length > 0) throw bad(`the checkpoint was made with another ${differs.join(', ')} than this spec`);
  if (json.step !== resumeStep) throw bad(`resume_from.step is ${resumeStep} but the checkpoint is of step ${json.step}`);
  const r = spec.hyperparameters.lora.r;
  const get = (name, shape) => {
    const t = tensors[name];
    if (!t || t.dtype !== 'F64' || t.shape.join() !== shape.join()) throw bad(`${STATE_TENSORS} has no F64 ${name} [${shape}]`);
    return t.data;
  };
  return {
    ...json,
    A: get('lora_A', [r, model.D]),
    B: get('lora_B', [model.V, r]),
    adam: {
      A: { m: get('adam.lora_A.m', [r, model.D]), v: get('adam.lora_A.v', [r, model.D]) },
      B: { m: get('adam.lora_B.m', [model.V, r]), v: get('adam.lora_B.v', [model.V, r]) },
    },
  };
}

/** Download resume_from's files (each sha256-checked) into dir. */
async function downloadCheckpoint(resume, dir) {
  await fsp.mkdir(dir, { recursive: true });
  const names = resume.files.map((f) => f.name);
  for (const needed of [STATE_JSON, STATE_TENSORS]) {
    if (!names.includes(needed)) throw new TrainerError('invalid_spec', `resume_from.files: a ${model.MODEL_NAME} checkpoint needs ${needed}`);
  }
  for (const f of resume.files) {
    // Names are flat in a tiny-lora checkpoint; anything with a path separator is not one of ours.
    if (f.name.includes('/') || f.name.includes('\\') || f.name.startsWith('.')) {
      throw new TrainerError('invalid_spec', `resume_from.files: unexpected file name ${JSON.stringify(f.name)}`);
    }
    await downloadVerified(f, path.join(dir, f.name), `checkpoint file ${f.name}`);
  }
}

/** Upload a checkpoint's files under output.key_prefix + checkpoint-<step>/ and announce them. */
async function uploadCheckpoint(spec, state, emit, lastLoss) {
  const prefix = `${spec.output.key_prefix}checkpoint-${state.step}/`;
  const files = checkpointFiles(state, spec);
  for (const f of files) await uploadFile({ ...spec.output, key_prefix: prefix }, f);
  const event = {
    type: 'checkpoint',
    step: state.step,
    key_prefix: prefix,
    files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: sha256Hex(f.data) })),
  };
  if (lastLoss !== undefined) event.metrics = { train_loss: lastLoss };
  emit(event);
}

// ---------------------------------------------------------------------------------------------------------------
// The job.

/**
 * Run a validated job end to end, printing contract events through `emit`. Throws TrainerError on a contract
 * failure (the caller turns it into an error event and exit code). `stop` is the SIGTERM state main() shares:
 * while `stop.training` is true a signal only sets `stop.requested`, and training ends after a checkpoint.
 */
async function runJob(spec, { scratchDir, emit, stop = { requested: false, training: false } }) {
  const hp = spec.hyperparameters;
  emit({ type: 'status', status: 'starting', message: `${model.MODEL_NAME} trainer (development model), job ${spec.job_id} attempt ${spec.attempt}` });

  emit({ type: 'status', status: 'loading_data', message: 'downloading and checking the dataset' });
  const dataDir = path.join(scratchDir, 'data');
  await fsp.mkdir(dataDir, { recursive: true });
  let resume;
  if (spec.resume_from) {
    const dir = path.join(scratchDir, 'resume');
    await downloadCheckpoint(spec.resume_from, dir);
    resume = loadCheckpoint(dir, spec, spec.resume_from.step);
  }
  await downloadVerified(spec.data.training_file, path.join(dataDir, 'train.jsonl'), 'training file');
  const examples = await readExamplesFile(path.join(dataDir, 'train.jsonl'), 'training file');
  let validation = [];
  if (spec.data.validation_file) {
    await downloadVerified(spec.data.validation_file, path.join(dataDir, 'validation.jsonl'), 'validation file');
    validation = await readExamplesFile(path.join(dataDir, 'validation.jsonl'), 'validation file');
  }

  const totalSteps = Math.ceil(examples.length / hp.batch_size) * hp.n_epochs;
  if (resume && resume.step >= totalSteps) {
    throw new TrainerError('invalid_spec', `resume_from: step ${resume.step} is not before the last step ${totalSteps}`);
  }
  const from = resume ? `, resuming after step ${resume.step}` : '';
  emit({ type: 'status', status: 'training', message: `${examples.length} examples, ${hp.n_epochs} epoch(s), ${totalSteps} steps, r=${hp.lora.r}${from}` });
  const started = Date.now();
  let lastLoss;
  const onMetrics = (event) => {
    lastLoss = event.train_loss;
    emit(event);
  };
  stop.training = true;
  let trained;
  try {
    trained = await train(examples, { seed: spec.seed, ...hp }, {
      validation,
      onMetrics,
      resume,
      checkpointEvery: spec.checkpoint_every_steps,
      shouldStop: () => stop.requested,
      onCheckpoint: (state) => uploadCheckpoint(spec, state, emit, lastLoss),
    });
  } finally {
    stop.training = false;
  }
  logDiag(`trained in ${Date.now() - started} ms`);
  if (trained.stopped) {
    throw new TrainerError('cancelled', `received ${stop.signal ?? 'a stop request'}; stopped after step ${trained.step} and uploaded its checkpoint`);
  }

  emit({ type: 'status', status: 'saving', message: 'writing the PEFT adapter' });
  const files = adapterFiles(trained, hp.lora);
  await writeFiles(path.join(scratchDir, 'adapter'), files);

  emit({ type: 'status', status: 'uploading', message: `uploading ${files.length} files to ${spec.output.key_prefix}` });
  for (const f of files) await uploadFile(spec.output, f);

  emit({
    type: 'artifact',
    kind: 'adapter',
    key_prefix: spec.output.key_prefix,
    files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: sha256Hex(f.data) })),
    trained_tokens: trained.trainedTokens,
  });
  emit({ type: 'status', status: 'completed', message: 'adapter uploaded' });
}

/** Error -> contract error event + exit code. Unknown errors are `internal`, with the stack on stderr. */
function failureOf(err) {
  if (err instanceof TrainerError) {
    const event = { type: 'error', code: err.code, message: err.message };
    if (err.line !== undefined) event.line = err.line;
    return { event, exitCode: TRAINER_EXIT[err.code] ?? TRAINER_EXIT.internal };
  }
  logDiag(`unexpected failure: ${err && err.stack ? err.stack : String(err)}`);
  const message = err && err.message ? err.message : String(err);
  return { event: { type: 'error', code: 'internal', message }, exitCode: TRAINER_EXIT.internal };
}

/**
 * The whole trainer as a function of its environment: returns the exit code. main() adds signals and process.exit.
 * @param {Record<string, string | undefined>} env
 */
async function run(env, emit = stdoutEmit, stop = { requested: false, training: false }) {
  try {
    const spec = parseSpecText(env.LORAPLANE_JOB_SPEC);
    stop.graceSeconds = spec.stop_grace_seconds ?? DEFAULT_GRACE_SECONDS;
    await runJob(spec, { scratchDir: env.LORAPLANE_SCRATCH_DIR || '/scratch', emit, stop });
    return TRAINER_EXIT.ok;
  } catch (err) {
    const { event, exitCode } = failureOf(err);
    emit(event);
    return exitCode;
  }
}

const DEFAULT_GRACE_SECONDS = 30;
/** Exit this long before the runtime's SIGKILL: exiting at the deadline itself is too late. */
const GRACE_MARGIN_MS = 3000;

function main() {
  const stop = { requested: false, training: false, graceSeconds: DEFAULT_GRACE_SECONDS };
  const onSignal = (signal) => {
    if (stop.requested) return;
    stop.requested = true;
    stop.signal = signal;
    if (!stop.training) {
      // Nothing trained yet (or the adapter is being saved): there is no progress a checkpoint would keep.
      stdoutEmit({ type: 'error', code: 'cancelled', message: `received ${signal} before training; stopped` });
      process.exit(TRAINER_EXIT.cancelled);
    }
    // Training: the loop checkpoints after the current step and run() ends with the cancelled event. If that does
    // not fit in the grace period (a slow object store), leave without the checkpoint rather than be killed.
    const budget = Math.max(stop.graceSeconds * 1000 - GRACE_MARGIN_MS, 500);
    setTimeout(() => {
      stdoutEmit({ type: 'error', code: 'cancelled', message: `received ${signal}; the checkpoint did not fit in the ${stop.graceSeconds} s grace period` });
      process.exit(TRAINER_EXIT.cancelled);
    }, budget).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  run(process.env, stdoutEmit, stop).then(
    (code) => process.exit(code),
    (err) => {
      logDiag(`trainer crashed: ${err && err.stack ? err.stack : String(err)}`);
      process.exit(TRAINER_EXIT.internal);
    },
  );
}

if (require.main === module) main();

module.exports = {
  CONTRACT_VERSION,
  TRAINER_EXIT,
  TrainerError,
  validateSpec,
  parseSpecText,
  parseExampleLine,
  examplesFromJsonl,
  countTokens,
  initLora,
  train,
  evaluate,
  adapterConfig,
  adapterFiles,
  writeFiles,
  sha256Hex,
  runJob,
  run,
  checkpointFiles,
  loadCheckpoint,
  fingerprint,
};
