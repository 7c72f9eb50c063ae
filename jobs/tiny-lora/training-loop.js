'use strict';
/**
 * Training: LoRA factors A [r, D] and B [V, r] on the frozen lm_head, minibatch Adam, linear learning-rate decay (the
 * HF default). Supervised: token cross-entropy of the answer (and its end token) under teacher forcing. DPO: the DPO
 * loss -log sigmoid(beta * ((log pi(yw) - log ref(yw)) - (log pi(yl) - log ref(yl)))) over whole answers, the
 * reference being the base model (the LoRA off), plus rpo_alpha * NLL(yw) / |yw| when the job anchors DPO with the
 * preferred output's likelihood (TRL's rpo_alpha; 0 = pure DPO). Every random choice (A's init, shuffling, dropout masks) comes from
 * PRNG streams seeded by `seed`, so the same inputs give byte-identical factors.
 */
// Module-local bindings of the globals used in hot loops (see model.js: Jest's vm context makes globals slow).
const { Math, Float64Array, Uint8Array } = globalThis;
const model = require('./model');

const { D, V } = model;
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
const BASE_CACHE_BYTES = 96 * 1024 * 1024;
const DEFAULT_BETA = 0.1;

/** PEFT's default init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), B = 0. */
function initLora(r, seed) {
  const rand = model.rngFor('lora_A', seed);
  const bound = 1 / Math.sqrt(D);
  const A = new Float64Array(r * D);
  for (let i = 0; i < A.length; i++) A[i] = (rand() * 2 - 1) * bound;
  return { A, B: new Float64Array(V * r) };
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

/** The sequences of an example (one for supervised, chosen + rejected for DPO). */
function sequencesOf(ex) {
  return ex.kind === 'dpo' ? [ex.chosen, ex.rejected] : [ex.seq];
}

/**
 * W0 is frozen, so each step's base logits can be computed once and reused every epoch. They cost V doubles per
 * answer token, so only sets that fit BASE_CACHE_BYTES are cached: the container may have 512 MB in all. Cached or
 * not, the numbers are the same, so the adapter bytes do not depend on it.
 */
function cacheBaseLogits(sets) {
  let count = 0;
  for (const set of sets) for (const ex of set) for (const s of sequencesOf(ex)) count += s.steps.length;
  if (count * V * 8 > BASE_CACHE_BYTES) return;
  for (const set of sets) for (const ex of set) for (const s of sequencesOf(ex)) s.base ??= s.steps.map((x) => model.baseLogits(x));
}

/**
 * One sequence forward: per step the LoRA input (after dropout), hidden h and log-probs; the summed log-prob of the
 * targets, its base-model counterpart, and how many targets were the argmax.
 */
function forwardSequence(seq, params, dropout) {
  const { r, scale, A, B } = params;
  const out = { logp: 0, refLogp: 0, correct: 0, steps: [] };
  for (let t = 0; t < seq.steps.length; t++) {
    const x = seq.steps[t];
    const base = seq.base ? seq.base[t] : model.baseLogits(x);
    const xLora = dropout ? dropout(x) : x;
    const h = model.loraHidden(A, r, xLora);
    // logits = base + scale * B h, then softmax, in place in one buffer that becomes the probabilities.
    const p = new Float64Array(V);
    let max = -Infinity;
    let best = 0;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += B[v * r + j] * h[j];
      const z = base[v] + scale * s;
      p[v] = z;
      if (z > max) [max, best] = [z, v];
    }
    let sum = 0;
    for (let v = 0; v < V; v++) {
      p[v] = Math.exp(p[v] - max);
      sum += p[v];
    }
    for (let v = 0; v < V; v++) p[v] /= sum;
    const target = seq.targets[t];
    out.logp += Math.log(p[target]);
    if (best === target) out.correct += 1;
    out.steps.push({ xLora, h, p });
  }
  return out;
}

/**
 * Backward of `weight * (-log p(target))` summed over a sequence's steps: dL/dlogits = weight * (softmax - onehot),
 * then dL/dB = scale * g h^T and dL/dA = (scale * B^T g) x^T, accumulated into grads.
 */
function backwardSequence(grads, params, seq, fw, weight) {
  const { r, scale, B } = params;
  const gB = grads.B;
  const gA = grads.A;
  const dh = new Float64Array(r);
  for (let t = 0; t < fw.steps.length; t++) {
    const { xLora, h, p } = fw.steps[t];
    dh.fill(0);
    const target = seq.targets[t];
    const ws = weight * scale;
    for (let v = 0; v < V; v++) {
      const g = ws * (v === target ? p[v] - 1 : p[v]);
      const row = v * r;
      for (let j = 0; j < r; j++) {
        gB[row + j] += g * h[j];
        dh[j] += g * B[row + j];
      }
    }
    for (let j = 0; j < r; j++) {
      const row = j * D;
      for (let k = 0; k < xLora.idx.length; k++) gA[row + xLora.idx[k]] += dh[j] * xLora.val[k];
    }
    grads.touch(xLora.idx);
  }
}

/** log p(answer) under the base model (the LoRA off): DPO's reference, fixed, so computed once per sequence. */
function referenceLogp(seq) {
  if (seq.refLogp === undefined) {
    seq.refLogp = 0;
    for (let t = 0; t < seq.steps.length; t++) {
      seq.refLogp += model.logSoftmax(seq.base ? seq.base[t] : model.baseLogits(seq.steps[t]))[seq.targets[t]];
    }
  }
  return seq.refLogp;
}

function softplus(z) {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function sigmoid(z) {
  return 1 / (1 + Math.exp(-z));
}

/**
 * Forward (and, with grads, backward) of one example. Returns what the metrics window adds up: loss, tokens (the
 * loss's denominator) and correct (argmax tokens for supervised; pairs ranked right for DPO).
 */
function exampleStep(ex, params, { grads, batchWeight, dropout, dpo = { beta: DEFAULT_BETA, rpoAlpha: 0 } }) {
  if (ex.kind === 'dpo') {
    const w = forwardSequence(ex.chosen, params, dropout);
    const l = forwardSequence(ex.rejected, params, dropout);
    const { beta, rpoAlpha } = dpo;
    const z = beta * ((w.logp - referenceLogp(ex.chosen)) - (l.logp - referenceLogp(ex.rejected)));
    // The anchor: the preferred output's mean token NLL, weighted by rpo_alpha (0 = pure DPO).
    const anchor = rpoAlpha / ex.chosen.targets.length;
    if (grads) {
      // dL/dz = -sigmoid(-z); d log pi(yw) pushes yw up, d log pi(yl) pushes yl down.
      const coef = sigmoid(-z) * beta * batchWeight;
      backwardSequence(grads, params, ex.chosen, w, coef + anchor * batchWeight);
      backwardSequence(grads, params, ex.rejected, l, -coef);
    }
    return { loss: softplus(-z) - anchor * w.logp, count: 1, correct: z > 0 ? 1 : 0 };
  }
  const fw = forwardSequence(ex.seq, params, dropout);
  if (grads) backwardSequence(grads, params, ex.seq, fw, batchWeight);
  return { loss: -fw.logp, count: ex.seq.targets.length, correct: fw.correct };
}

function adamStep(param, grad, state, lr, t) {
  const { beta1, beta2, eps } = ADAM;
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (let i = 0; i < param.length; i++) adamUpdate(param, grad, state, i, lr, c1, c2);
}

function adamUpdate(param, grad, state, i, lr, c1, c2) {
  const { beta1, beta2, eps } = ADAM;
  const g = grad[i];
  state.m[i] = beta1 * state.m[i] + (1 - beta1) * g;
  state.v[i] = beta2 * state.v[i] + (1 - beta2) * g * g;
  param[i] -= (lr * (state.m[i] / c1)) / (Math.sqrt(state.v[i] / c2) + eps);
}

/**
 * Adam on lora_A, [r, D], visiting only the buckets some step has touched: an entry whose gradient was always zero
 * has zero moments, and Adam leaves it exactly as it is, so skipping it changes no bit.
 */
function adamStepColumns(param, grad, state, lr, t, columns, r) {
  const { beta1, beta2 } = ADAM;
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (const d of columns) for (let j = 0; j < r; j++) adamUpdate(param, grad, state, j * D + d, lr, c1, c2);
}

/**
 * Gradient buffers reused every step (a rank-512 A has 8M entries; a fresh one per step would churn the GC), with
 * the buckets touched this step (to clear them) and ever (for adamStepColumns).
 */
function gradientBuffers(r) {
  const everSeen = new Uint8Array(D);
  const stepSeen = new Uint8Array(D);
  const grads = {
    A: new Float64Array(r * D),
    B: new Float64Array(V * r),
    ever: [],
    step: [],
    touch(idx) {
      for (let k = 0; k < idx.length; k++) {
        const d = idx[k];
        if (stepSeen[d] === 0) [stepSeen[d], grads.step[grads.step.length]] = [1, d];
        if (everSeen[d] === 0) [everSeen[d], grads.ever[grads.ever.length]] = [1, d];
      }
    },
    /** Zero what the last step wrote; `ever` is kept sorted so updates run in a fixed order. */
    clear() {
      for (const d of grads.step) {
        stepSeen[d] = 0;
        for (let j = 0; j < r; j++) grads.A[j * D + d] = 0;
      }
      grads.step.length = 0;
      grads.B.fill(0);
    },
    /** Mark buckets as ever touched (a resumed run: every bucket whose Adam moments are not zero). */
    markEver(columns) {
      for (const d of columns) if (everSeen[d] === 0) [everSeen[d], grads.ever[grads.ever.length]] = [1, d];
    },
  };
  return grads;
}

/** Mean loss (per token, or per pair for DPO) and accuracy of the current parameters on examples (no dropout). */
function evaluate(examples, params, dpo = { beta: DEFAULT_BETA, rpoAlpha: 0 }) {
  let loss = 0;
  let count = 0;
  let correct = 0;
  for (const ex of examples) {
    const s = exampleStep(ex, params, { dpo });
    loss += s.loss;
    count += s.count;
    correct += s.correct;
  }
  return { loss: loss / count, accuracy: correct / count };
}

module.exports = { ADAM, DEFAULT_BETA, initLora, shuffledOrder, dropoutFeatures, cacheBaseLogits, exampleStep, adamStep, adamStepColumns, gradientBuffers, evaluate, sequencesOf };
