'use strict';
/**
 * tiny-lora: a DEVELOPMENT language model. It exists so that every loraplane flow (train, register, serve, eval)
 * runs for real on machines without GPUs or GPT-OSS weights, and never stands in for GPT-OSS in any claim.
 *
 * It generates an answer one token (byte) at a time:
 *   x_t    = features(input messages, answer so far)                    (features.js: hashed, sparse, D buckets)
 *   logits = W0 x_t + scale * B (A x_t)     W0 = lm_head [V, D] (frozen, seeded noise), A [r, D], B [V, r] (the LoRA)
 *   next   = argmax (or a sample of) softmax(logits), until the end token or max_tokens
 * W0 is small deterministic noise, so the base model rambles bytes at random and is at chance on any task; all it
 * learns comes from the adapter. An adapter is a PEFT directory whose tensors have the names and shapes PEFT gives a
 * LoRA on a Linear(D -> V) module called lm_head; adapter_config.json's `revision` names the base weights.
 */
// Module-local bindings of the globals used in hot loops. Inside a vm context (Jest runs tests in one) every global
// lookup goes through an interceptor and training runs ~50x slower; a module-level const is a plain closure variable.
const { Math, Float32Array, Float64Array, Uint8Array } = globalThis;
const fs = require('node:fs');
const path = require('node:path');
const tokenizer = require('./tokenizer');
const features = require('./features');
const safetensors = require('./safetensors');

const MODEL_NAME = 'tiny-lora';
const { D, INPUT_ROLES, fnv1a } = features;
const { V, EOS, MAX_ANSWER_TOKENS } = tokenizer;
/**
 * Changing the seed, D, the features or the tokenizer makes a different base model: bump the version suffix. v1 was
 * the one-word classifier; its adapters ([272, r] lora_B, no revision) are refused by parseAdapter and by serving.
 */
const BASE_SEED = 'tiny-lora-base-v2';
const BASE_INIT_RANGE = 0.05;
const TARGET_MODULE = 'lm_head';
const LORA_A_NAME = 'base_model.model.lm_head.lora_A.weight';
const LORA_B_NAME = 'base_model.model.lm_head.lora_B.weight';

/**
 * mulberry32: a small, fast, seedable PRNG; identical sequences on every platform for the same seed. Its whole state
 * is one 32-bit integer (`getState`/`setState`), which a checkpoint saves so a resumed run draws the same numbers.
 */
function mulberry32(seed) {
  let a = seed >>> 0;
  function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  next.getState = () => a;
  next.setState = (state) => {
    a = state >>> 0;
  };
  return next;
}

/** A PRNG for one named purpose (e.g. "lora_A", "shuffle") of one seed, so streams never share state. */
function rngFor(purpose, seed) {
  return mulberry32(fnv1a(`${purpose}:${seed}`));
}

const baseWeights = new Float32Array(V * D);
const baseRowReady = new Uint8Array(D);
const BASE_HASH = fnv1a(BASE_SEED);

/**
 * lm_head W0, the "pretrained weights": small noise from BASE_SEED. Stored transposed ([D, V], row d = the V weights
 * of bucket d) so that W0 x over a sparse x reads contiguous rows, and each row is generated from its own PRNG stream
 * the first time it is used (a request touches a few hundred of the D rows; generating all costs half a second).
 */
function baseRow(d) {
  const row = d * V;
  if (baseRowReady[d] === 0) {
    const rand = mulberry32(features.mix(BASE_HASH, d));
    for (let v = 0; v < V; v++) baseWeights[row + v] = (rand() * 2 - 1) * BASE_INIT_RANGE;
    baseRowReady[d] = 1;
  }
  return row;
}

/** The whole of W0 ([D, V]), every row generated. */
function getBaseWeights() {
  for (let d = 0; d < D; d++) baseRow(d);
  return baseWeights;
}

/**
 * lm_head's bias: printable ASCII is e^2 times likelier than other bytes, and the end token likely enough that base
 * answers are a dozen characters of noise, not 64 bytes of control characters. Still at chance on any task.
 */
const BASE_BIAS = Float64Array.from({ length: V }, (_, id) => (id === EOS ? 3 : id >= 0x20 && id < 0x7f ? 2 : 0));
/**
 * The base model's one skill, as small language models have it: copying. Each input word the answer so far is a
 * prefix of votes for its next byte (or the end), COPY_PRIOR shared among the voters. So the base answers with some
 * word of its input, whichever its noise favours: at chance on a task, but a start DPO can rank answers from.
 */
const COPY_PRIOR = 8;

/** W0 x + bias for a sparse x. */
function baseLogits(x) {
  const out = Float64Array.from(BASE_BIAS);
  if (x.votes && x.votes.length > 0) {
    const each = COPY_PRIOR / x.votes.length;
    for (let k = 0; k < x.votes.length; k++) out[x.votes[k]] += each;
  }
  for (let k = 0; k < x.idx.length; k++) {
    const row = baseRow(x.idx[k]);
    const xv = x.val[k];
    for (let v = 0; v < V; v++) out[v] += baseWeights[row + v] * xv;
  }
  return out;
}

/** h = A x for a sparse x; A is [r, D] row-major. */
function loraHidden(A, r, x) {
  const h = new Float64Array(r);
  for (let j = 0; j < r; j++) {
    const row = j * D;
    let s = 0;
    for (let k = 0; k < x.idx.length; k++) s += A[row + x.idx[k]] * x.val[k];
    h[j] = s;
  }
  return h;
}

/** logits += scale * B h; B is [V, r] row-major. */
function addLoraLogits(logits, B, r, scale, h) {
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let j = 0; j < r; j++) s += B[v * r + j] * h[j];
    logits[v] += scale * s;
  }
  return logits;
}

/** The next-token logits for step features x, with or without an adapter. */
function logitsFor(x, adapter) {
  const logits = baseLogits(x);
  if (adapter) addLoraLogits(logits, adapter.B, adapter.r, adapter.scale, loraHidden(adapter.A, adapter.r, x));
  return logits;
}

/** Numerically stable log-softmax. */
function logSoftmax(logits) {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** The k most likely tokens, best first (ties by id), as [{ id, logprob }]. */
function topTokens(logprobs, k) {
  const out = [];
  for (let n = 0; n < k; n++) {
    let best = -1;
    for (let i = 0; i < logprobs.length; i++) {
      if (out.some((o) => o.id === i)) continue;
      if (best < 0 || logprobs[i] > logprobs[best]) best = i;
    }
    out.push({ id: best, logprob: logprobs[best] });
  }
  return out;
}

/**
 * Draw the next token: argmax at temperature 0, else a sample from softmax(logits / temperature) cut to the
 * smallest set of tokens whose probability reaches top_p.
 */
function chooseToken(logits, { temperature = 0, topP = 1, rand }) {
  if (!(temperature > 0)) return argmax(logits);
  const scaled = logSoftmax(logits.map((z) => z / temperature));
  const order = Array.from(scaled.keys()).sort((a, b) => scaled[b] - scaled[a] || a - b);
  let mass = 0;
  let cut = order.length;
  for (let i = 0; i < order.length; i++) {
    mass += Math.exp(scaled[order[i]]);
    if (mass >= topP) {
      cut = i + 1;
      break;
    }
  }
  let u = rand() * Math.min(mass, 1);
  for (let i = 0; i < cut; i++) {
    u -= Math.exp(scaled[order[i]]);
    if (u <= 0) return order[i];
  }
  return order[cut - 1];
}

/**
 * Generate an answer token by token. `onToken` (if given) sees each token as it is chosen; returning false stops
 * generation (a stop sequence matched). Log-probabilities are of the unscaled distribution, as vLLM reports them.
 * @returns {{ tokens: {id: number, logprob: number, top: {id: number, logprob: number}[]}[], finish: 'stop'|'length' }}
 */
function generate(messages, adapter = null, opts = {}) {
  const { maxTokens = MAX_ANSWER_TOKENS, temperature = 0, topP = 1, seed = 0, topK = 0, onToken } = opts;
  const rand = mulberry32(fnv1a(`sample:${seed}`));
  const ctx = features.inputContext(messages);
  let state = features.startState(ctx);
  const tokens = [];
  for (let t = 0; t < maxTokens; t++) {
    const logits = logitsFor(features.stepFeatures(ctx, state), adapter);
    const id = chooseToken(logits, { temperature, topP, rand });
    const logprobs = logSoftmax(logits);
    const token = { id, logprob: logprobs[id], top: topK > 0 ? topTokens(logprobs, topK) : [] };
    if (id === EOS) return { tokens, finish: 'stop', eos: token };
    tokens.push(token);
    if (onToken && onToken(token, tokens) === false) return { tokens, finish: 'stop' };
    state = features.advance(ctx, state, id);
  }
  return { tokens, finish: 'length' };
}

/** Greedy answer text of a chat (evals, tests): the answer, its total log-probability and its tokens. */
function predict(messages, adapter = null, maxTokens = MAX_ANSWER_TOKENS) {
  const out = generate(messages, adapter, { maxTokens });
  const bytes = out.tokens.map((t) => t.id);
  const logprob = out.tokens.reduce((s, t) => s + t.logprob, 0) + (out.eos ? out.eos.logprob : 0);
  return { answer: tokenizer.decode(bytes), tokens: bytes, logprob, finish: out.finish };
}

/** The scale PEFT applies to B A x. */
function loraScale(config) {
  return config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r;
}

/**
 * Check a PEFT adapter (config object + safetensors bytes) against this base model and return it ready for generate.
 * Throws with a message naming the problem when the adapter was not made for this base.
 */
function parseAdapter(config, safetensorsBytes) {
  if (config.peft_type !== 'LORA') throw new Error(`adapter peft_type is ${config.peft_type}, expected LORA`);
  if (config.base_model_name_or_path !== MODEL_NAME) {
    throw new Error(`adapter was trained for ${config.base_model_name_or_path}, not ${MODEL_NAME}`);
  }
  if (config.revision !== BASE_SEED) {
    const was = config.revision ? `base weights ${config.revision}` : 'an older tiny-lora base (no revision recorded)';
    throw new Error(`adapter was trained on ${was}, but this server holds ${BASE_SEED}: retrain it on the current base`);
  }
  const targets = Array.isArray(config.target_modules) ? config.target_modules : [config.target_modules];
  if (!targets.includes(TARGET_MODULE)) throw new Error(`adapter target_modules must include ${TARGET_MODULE}`);
  if (config.use_dora) throw new Error('DoRA adapters are not supported by tiny-lora');
  const r = config.r;
  if (!Number.isInteger(r) || r < 1) throw new Error(`adapter r must be a positive integer, got ${r}`);
  const { tensors } = safetensors.deserialize(safetensorsBytes);
  const A = tensors[LORA_A_NAME];
  const B = tensors[LORA_B_NAME];
  if (!A || !B) throw new Error(`adapter_model.safetensors must hold ${LORA_A_NAME} and ${LORA_B_NAME}`);
  if (A.shape.join() !== `${r},${D}`) throw new Error(`${LORA_A_NAME} has shape [${A.shape}], expected [${r}, ${D}]`);
  if (B.shape.join() !== `${V},${r}`) throw new Error(`${LORA_B_NAME} has shape [${B.shape}], expected [${V}, ${r}]`);
  return { config, r, alpha: config.lora_alpha, scale: loraScale(config), A: A.data, B: B.data };
}

/** Read a PEFT adapter directory written by the trainer (or any tool that follows the same layout). */
function loadAdapter(dir) {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  return parseAdapter(config, fs.readFileSync(path.join(dir, 'adapter_model.safetensors')));
}

module.exports = {
  MODEL_NAME,
  D,
  V,
  EOS,
  MAX_ANSWER_TOKENS,
  BASE_SEED,
  TARGET_MODULE,
  LORA_A_NAME,
  LORA_B_NAME,
  INPUT_ROLES,
  fnv1a,
  mulberry32,
  rngFor,
  contentText: tokenizer.contentText,
  getBaseWeights,
  baseLogits,
  loraHidden,
  addLoraLogits,
  logitsFor,
  logSoftmax,
  argmax,
  topTokens,
  chooseToken,
  generate,
  predict,
  loraScale,
  parseAdapter,
  loadAdapter,
};
