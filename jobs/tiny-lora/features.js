'use strict';
/**
 * The features the tiny-lora model predicts the next token from: the input messages and the answer so far, hashed
 * into D buckets (a sparse vector). Three groups, each L2-normalised on its own so none drowns the others:
 *   cross  - every input word and word bigram, combined with a hash of the whole answer so far: "which way does this
 *            input steer the answer at this point". At the first token it is a plain bag of words.
 *   prefix - the answer so far, and its last byte with the position: spelling that does not depend on the input.
 *   copy   - for each input word the answer so far is a prefix of: the word's next byte (or the end) with the word's
 *            shape (digits -> 9, letters -> a/A) and the word before it. This is how an order number or a name in
 *            the input is copied byte by byte without ever having been seen in training.
 */
const { Math, Int32Array, Float64Array, Uint32Array } = globalThis;
const { EOS, encode, contentText } = require('./tokenizer');

const D = 16384;
const INPUT_ROLES = new Set(['system', 'developer', 'user']);
const WORD_RE = /[\p{L}\p{N}]+/gu;
/** Copy candidates keep inner hyphens, underscores, dots and apostrophes: `order-status-2`, `v1.2`, `O'Neil`. */
const COPY_WORD_RE = /[\p{L}\p{N}]+(?:[-_.'][\p{L}\p{N}]+)*/gu;
const MAX_COPY_BYTES = 64;
/** Before the first byte every input word matches; their copy votes count half, so the input's meaning leads. */
const COPY_START_WEIGHT = 0.5;

const FNV_OFFSET = 0x811c9dc5;

/** 32-bit FNV-1a over the UTF-8 bytes of a string. */
function fnv1a(text) {
  let h = FNV_OFFSET;
  for (const byte of encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Combine two 32-bit values into a well-spread 32-bit hash (murmur3's finaliser over a ^ b * golden). */
function mix(a, b) {
  let h = (a ^ Math.imul(b + 0x7f4a7c15, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TAG = { bias: fnv1a('\u0000bias'), prefix: fnv1a('\u0000prefix'), last: fnv1a('\u0000last'), copy: fnv1a('\u0000copy'), copyPrev: fnv1a('\u0000copy-prev'), copyNext: fnv1a('\u0000copy-next') };

/** A word's shape: runs of digits -> 9, of lowercase -> a, of uppercase -> A; other characters kept. */
function shapeOf(word) {
  let out = '';
  for (const ch of word) {
    const s = /\p{N}/u.test(ch) ? '9' : /\p{Lu}/u.test(ch) ? 'A' : /\p{L}/u.test(ch) ? 'a' : ch;
    if (!out.endsWith(s)) out += s;
  }
  return out;
}

/**
 * Everything about the input the step features need, computed once per request or example.
 * @returns {{ input: Uint32Array, words: { bytes: Uint8Array, shape: number, prev: number }[] }}
 */
function inputContext(messages) {
  const seen = new Set([TAG.bias]);
  const words = [];
  for (const m of messages) {
    if (!m || !INPUT_ROLES.has(m.role)) continue;
    const text = contentText(m.content);
    // Digits are 9s in the bag of words: a number's value would be a feature seen once (memorised, never
    // generalised); its length and place remain, and the copy features below still see the real digits.
    const ws = (text.toLowerCase().match(WORD_RE) ?? []).map((w) => w.replace(/\p{Nd}/gu, '9'));
    for (let i = 0; i < ws.length; i++) {
      seen.add(fnv1a(ws[i]));
      if (i > 0) seen.add(fnv1a(`${ws[i - 1]} ${ws[i]}`));
    }
    const found = text.match(COPY_WORD_RE) ?? [];
    const around = (i) => (i >= 0 && i < found.length ? found[i].toLowerCase().replace(/\p{Nd}/gu, '9') : '');
    found.forEach((w, i) => {
      const bytes = encode(w);
      if (bytes.length <= MAX_COPY_BYTES) words.push({ bytes, shape: fnv1a(shapeOf(w)), prev: fnv1a(around(i - 1)), next: fnv1a(around(i + 1)) });
    });
  }
  return { input: Uint32Array.from([...seen].sort((a, b) => a - b)), words };
}

/** The answer-so-far state: position, hash of the bytes so far, last byte, which copy words still match. */
function startState(ctx) {
  return { t: 0, hash: FNV_OFFSET, last: EOS, matching: ctx.words.map(() => true) };
}

/** The state after emitting `token` (a byte). */
function advance(ctx, state, token) {
  const t = state.t;
  return {
    t: t + 1,
    // Digits enter the hash as '9': what follows "order 4821" must not depend on which number it is (the digits
    // themselves come from the copy features), while the last byte below still tells them apart.
    hash: mix(state.hash, (token >= 0x30 && token <= 0x39 ? 0x39 : token) + 1),
    last: token,
    matching: state.matching.map((ok, i) => ok && ctx.words[i].bytes[t] === token),
  };
}

/** The sparse feature vector for the next token. Buckets may repeat (their values add up), in a fixed order. */
function stepFeatures(ctx, state) {
  const idx = [];
  const val = [];
  const group = (hashes, weight = 1 / Math.sqrt(hashes.length)) => {
    const w = weight;
    for (const h of hashes) {
      idx.push(h % D);
      val.push(w);
    }
  };
  const cross = new Array(ctx.input.length);
  for (let k = 0; k < ctx.input.length; k++) cross[k] = mix(ctx.input[k], state.hash);
  group(cross);
  group([mix(TAG.prefix, state.hash), mix(mix(TAG.last, state.last), state.t)]);
  const copy = [];
  const votes = [];
  ctx.words.forEach((word, i) => {
    if (!state.matching[i]) return;
    const next = state.t < word.bytes.length ? word.bytes[state.t] : EOS;
    votes.push(next);
    // Before the first byte every word matches, and "copy some word" says nothing: only the word's context (shape and
    // the word before it) may vote then. Once the answer is under way, the matching words are the ones being copied.
    if (state.t > 0) copy.push(mix(mix(TAG.copy, word.shape), next));
    copy.push(mix(mix(mix(TAG.copyPrev, word.shape), word.prev), next), mix(mix(mix(TAG.copyNext, word.shape), word.next), next));
  });
  group(copy, state.t > 0 ? 1 : COPY_START_WEIGHT);
  return { idx: Int32Array.from(idx), val: Float64Array.from(val), votes: Int32Array.from(votes) };
}

/** The step features of every position of a known answer (teacher forcing), ending with the one that predicts EOS. */
function answerSteps(ctx, answerBytes) {
  const steps = [];
  let state = startState(ctx);
  for (let t = 0; t <= answerBytes.length; t++) {
    steps.push(stepFeatures(ctx, state));
    if (t < answerBytes.length) state = advance(ctx, state, answerBytes[t]);
  }
  return steps;
}

module.exports = { D, INPUT_ROLES, fnv1a, mix, shapeOf, inputContext, startState, advance, stepFeatures, answerSteps };
