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
 * @param {ReturnType<typeof parseExampleLine>[]} examples
 * @param {{ seed: number, n_epochs: number, batch_size: number, learning_rate: number,
 *           lora: { r: number, alpha: number, dropout: number } }} options
 * @param {{ validation?: object[], onMetrics?: (m: object) => void, logEvery?: number }} [hooks]
 * @returns {Promise<{ A: Float64Array, B: Float64Array, r: number, alpha: number, scale: number, trainedTokens: number }>}
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
  let lastYield = Date.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = shuffledOrder(examples.length, shuffleRand);
    for (let b = 0; b < stepsPerEpoch; b++) {
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
        await yieldToEventLoop();
        lastYield = Date.now();
      }
    }
  }
  return { A: params.A, B: params.B, r, alpha: lora.alpha, scale: params.scale, trainedTokens };
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
// The job.

/**
 * Run a validated job end to end, printing contract events through `emit`. Throws TrainerError on a contract
 * failure (the caller turns it into an error event and exit code).
 */
async function runJob(spec, { scratchDir, emit }) {
  const hp = spec.hyperparameters;
  emit({ type: 'status', status: 'starting', message: `${model.MODEL_NAME} trainer (development model), job ${spec.job_id} attempt ${spec.attempt}` });

  emit({ type: 'status', status: 'loading_data', message: 'downloading and checking the dataset' });
  const dataDir = path.join(scratchDir, 'data');
  await fsp.mkdir(dataDir, { recursive: true });
  await downloadVerified(spec.data.training_file, path.join(dataDir, 'train.jsonl'), 'training file');
  const examples = await readExamplesFile(path.join(dataDir, 'train.jsonl'), 'training file');
  let validation = [];
  if (spec.data.validation_file) {
    await downloadVerified(spec.data.validation_file, path.join(dataDir, 'validation.jsonl'), 'validation file');
    validation = await readExamplesFile(path.join(dataDir, 'validation.jsonl'), 'validation file');
  }

  const totalSteps = Math.ceil(examples.length / hp.batch_size) * hp.n_epochs;
  emit({ type: 'status', status: 'training', message: `${examples.length} examples, ${hp.n_epochs} epoch(s), ${totalSteps} steps, r=${hp.lora.r}` });
  const started = Date.now();
  const trained = await train(examples, { seed: spec.seed, ...hp }, { validation, onMetrics: emit });
  logDiag(`trained in ${Date.now() - started} ms`);

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
async function run(env, emit = stdoutEmit) {
  try {
    const spec = parseSpecText(env.LORAPLANE_JOB_SPEC);
    await runJob(spec, { scratchDir: env.LORAPLANE_SCRATCH_DIR || '/scratch', emit });
    return TRAINER_EXIT.ok;
  } catch (err) {
    const { event, exitCode } = failureOf(err);
    emit(event);
    return exitCode;
  }
}

function main() {
  const onSignal = (signal) => {
    // No checkpoints yet, so a stop loses the progress; the contract asks for exit 143 within the grace period.
    stdoutEmit({ type: 'error', code: 'cancelled', message: `received ${signal}; stopped without a checkpoint` });
    process.exit(TRAINER_EXIT.cancelled);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  run(process.env).then(
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
};
