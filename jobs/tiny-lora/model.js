'use strict';
/**
 * tiny-lora: a DEVELOPMENT model. It exists so that every loraplane flow (train, register, serve, eval) runs for real
 * on machines without GPUs or GPT-OSS weights. It is a classifier, not a language model, and never stands in for
 * GPT-OSS in any claim.
 *
 * The model:
 *   x      = featurize(messages): a hashed bag of words (unigrams + bigrams of the lowercased system/developer/user
 *            text, FNV-1a into D buckets, L2-normalised, sparse) plus one constant bias feature.
 *   logits = W0 x + scale * B (A x)        W0 = lm_head [V, D] (frozen, seeded), A [r, D], B [V, r] (the LoRA)
 *   answer = VOCAB[argmax logits]          scale = lora_alpha / r (PEFT; lora_alpha / sqrt(r) with use_rslora)
 *
 * W0 is small deterministic noise, so the base model is at (or below) chance on any task; everything it learns comes
 * from the adapter. An adapter is a PEFT directory (adapter_config.json + adapter_model.safetensors) with the tensors
 * base_model.model.lm_head.lora_A.weight [r, D] and base_model.model.lm_head.lora_B.weight [V, r], the names and
 * shapes PEFT gives a LoRA on a Linear(D -> V) module called lm_head.
 */
// Module-local bindings of the globals used in hot loops. Inside a vm context (Jest runs tests in one) every global
// lookup goes through an interceptor and training runs ~50x slower; a module-level const is a plain closure variable.
const { Math, Float32Array, Float64Array, Int32Array } = globalThis;
const fs = require('node:fs');
const path = require('node:path');
const { VOCAB } = require('./vocab');
const safetensors = require('./safetensors');

const MODEL_NAME = 'tiny-lora';
const D = 4096;
const V = VOCAB.length;
/** Changing the seed, D, the features or the vocabulary makes a different base model: bump the version suffix. */
const BASE_SEED = 'tiny-lora-base-v1';
const BASE_INIT_RANGE = 0.05;
const TARGET_MODULE = 'lm_head';
const LORA_A_NAME = 'base_model.model.lm_head.lora_A.weight';
const LORA_B_NAME = 'base_model.model.lm_head.lora_B.weight';
const BIAS_FEATURE = '\u0000bias'; // cannot collide with a word: words never contain NUL

const INPUT_ROLES = new Set(['system', 'developer', 'user']);
const WORD_RE = /[\p{L}\p{N}]+/gu;

/** 32-bit FNV-1a over the UTF-8 bytes of a string. */
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

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

/** Text content of a message: a string, or OpenAI-style content parts of type "text". */
function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part && part.type === 'text' && typeof part.text === 'string' ? part.text : '')).join(' ');
  }
  return '';
}

function words(text) {
  return text.toLowerCase().match(WORD_RE) ?? [];
}

/**
 * The model's input: hashed unigram + bigram counts of every system/developer/user message (bigrams do not cross
 * message boundaries), L2-normalised. Returned sparse, sorted by bucket, so sums run in a fixed order.
 * @returns {{ idx: Int32Array, val: Float64Array }}
 */
function featurize(messages) {
  const counts = new Map();
  const add = (feature) => {
    const bucket = fnv1a(feature) % D;
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  };
  add(BIAS_FEATURE);
  for (const m of messages) {
    if (!m || !INPUT_ROLES.has(m.role)) continue;
    const ws = words(contentText(m.content));
    for (let i = 0; i < ws.length; i++) {
      add(ws[i]);
      if (i > 0) add(`${ws[i - 1]} ${ws[i]}`);
    }
  }
  const buckets = [...counts.keys()].sort((a, b) => a - b);
  let norm = 0;
  for (const b of buckets) norm += counts.get(b) ** 2;
  norm = Math.sqrt(norm);
  const idx = new Int32Array(buckets);
  const val = new Float64Array(buckets.length);
  for (let k = 0; k < buckets.length; k++) val[k] = counts.get(buckets[k]) / norm;
  return { idx, val };
}

let baseWeights = null;
/** lm_head W0 [V, D], row-major, generated once from BASE_SEED: the "pretrained weights" of the tiny model. */
function getBaseWeights() {
  if (!baseWeights) {
    const rand = mulberry32(fnv1a(BASE_SEED));
    baseWeights = new Float32Array(V * D);
    for (let i = 0; i < baseWeights.length; i++) baseWeights[i] = (rand() * 2 - 1) * BASE_INIT_RANGE;
  }
  return baseWeights;
}

/** W0 x for a sparse x. */
function baseLogits(x) {
  const W0 = getBaseWeights();
  const out = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    const row = v * D;
    let s = 0;
    for (let k = 0; k < x.idx.length; k++) s += W0[row + x.idx[k]] * x.val[k];
    out[v] = s;
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

/** Numerically stable log-softmax. */
function logSoftmax(logits) {
  let max = -Infinity;
  for (const z of logits) if (z > max) max = z;
  let sum = 0;
  for (const z of logits) sum += Math.exp(z - max);
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

/**
 * Answer a chat: the most likely vocabulary word, its log-probability and the top alternatives.
 * @param {Array<{role: string, content: unknown}>} messages
 * @param {{ r: number, scale: number, A: ArrayLike<number>, B: ArrayLike<number> } | null} [adapter]
 */
function predict(messages, adapter = null, topK = 5) {
  const x = featurize(messages);
  const logits = baseLogits(x);
  if (adapter) addLoraLogits(logits, adapter.B, adapter.r, adapter.scale, loraHidden(adapter.A, adapter.r, x));
  const logprobs = logSoftmax(logits);
  const order = Array.from(logprobs.keys()).sort((a, b) => logprobs[b] - logprobs[a] || a - b);
  const best = order[0];
  return {
    answer: VOCAB[best],
    index: best,
    logprob: logprobs[best],
    top: order.slice(0, topK).map((i) => ({ answer: VOCAB[i], logprob: logprobs[i] })),
  };
}

const VOCAB_INDEX = new Map(VOCAB.map((w, i) => [w, i]));

/**
 * Map an answer text to its vocabulary index: trim, lowercase, drop wrapping quotes and trailing punctuation
 * ("Billing." -> billing, '"B"' -> b). Returns null for anything that is not one vocabulary word.
 */
function answerIndex(text) {
  if (typeof text !== 'string') return null;
  let t = text.trim().toLowerCase();
  t = t.replace(/[.!?,;:]+$/u, '').trim();
  t = t.replace(/^["'`]+|["'`]+$/gu, '').trim();
  t = t.replace(/[.!?,;:]+$/u, '');
  return VOCAB_INDEX.get(t) ?? null;
}

/** The scale PEFT applies to B A x. */
function loraScale(config) {
  return config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r;
}

/**
 * Check a PEFT adapter (config object + safetensors bytes) against this base model and return it ready for predict.
 * Throws with a message naming the problem when the adapter was not made for tiny-lora.
 */
function parseAdapter(config, safetensorsBytes) {
  if (config.peft_type !== 'LORA') throw new Error(`adapter peft_type is ${config.peft_type}, expected LORA`);
  if (config.base_model_name_or_path !== MODEL_NAME) {
    throw new Error(`adapter was trained for ${config.base_model_name_or_path}, not ${MODEL_NAME}`);
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
  VOCAB,
  BASE_SEED,
  TARGET_MODULE,
  LORA_A_NAME,
  LORA_B_NAME,
  INPUT_ROLES,
  fnv1a,
  mulberry32,
  rngFor,
  contentText,
  words,
  featurize,
  getBaseWeights,
  baseLogits,
  loraHidden,
  addLoraLogits,
  logSoftmax,
  argmax,
  predict,
  answerIndex,
  loraScale,
  parseAdapter,
  loadAdapter,
};
