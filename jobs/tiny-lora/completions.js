'use strict';
/**
 * The generation endpoints of the tiny-lora server, in vLLM's OpenAI-compatible shapes: /v1/chat/completions and
 * /v1/completions, whole or streamed (one SSE chunk per generated token that completes text), with max_tokens,
 * stop, temperature / top_p / seed, logprobs / top_logprobs, and usage counted with the model's own tokenizer.
 */
const crypto = require('node:crypto');
const model = require('./model');
const tokenizer = require('./tokenizer');

const MAX_MODEL_LEN = 4096;
/** vLLM's default for temperature and top_p when the model's generation config sets none. */
const DEFAULTS = { temperature: 1, topP: 1 };

class ApiError extends Error {
  constructor(status, type, message, param = null) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
  }
}

const bad = (message, param = null) => new ApiError(400, 'BadRequestError', message, param);

function numberIn(body, key, { min, max, int = false }) {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min || v > max) {
    throw bad(`\`${key}\` must be ${int ? 'an integer' : 'a number'} between ${min} and ${max}, got ${JSON.stringify(v)}`, key);
  }
  return v;
}

/** The sampling request of either endpoint, checked as vLLM checks it (400 naming the parameter). */
function samplingParams(body, promptTokens, chat) {
  const room = MAX_MODEL_LEN - promptTokens;
  if (room <= 0) {
    throw bad(`This model's maximum context length is ${MAX_MODEL_LEN} tokens. However, you requested ${promptTokens} tokens in the messages.`);
  }
  const maxTokens = numberIn(body, chat && body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens', { min: 1, max: Number.MAX_SAFE_INTEGER, int: true });
  if (maxTokens !== undefined && maxTokens > room) {
    throw bad(`This model's maximum context length is ${MAX_MODEL_LEN} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion).`);
  }
  let stop = body.stop ?? [];
  if (typeof stop === 'string') stop = [stop];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string')) throw bad('`stop` must be a string or a list of strings', 'stop');
  const n = numberIn(body, 'n', { min: 1, max: 1, int: true });
  let topLogprobs = 0;
  if (chat) {
    const top = numberIn(body, 'top_logprobs', { min: 0, max: 20, int: true });
    if (top !== undefined && body.logprobs !== true) throw bad('when using `top_logprobs`, `logprobs` must be set to true.', 'top_logprobs');
    topLogprobs = top ?? 0;
  } else {
    topLogprobs = numberIn(body, 'logprobs', { min: 0, max: 20, int: true }) ?? -1;
  }
  const seed = numberIn(body, 'seed', { min: -(2 ** 63), max: 2 ** 64, int: true });
  return {
    n,
    // A request without max_tokens gets what the context leaves, capped at the model's answer length: the base
    // model never says when to stop.
    maxTokens: maxTokens ?? Math.min(room, tokenizer.MAX_ANSWER_TOKENS),
    temperature: numberIn(body, 'temperature', { min: 0, max: 2 }) ?? DEFAULTS.temperature,
    topP: numberIn(body, 'top_p', { min: Number.MIN_VALUE, max: 1 }) ?? DEFAULTS.topP,
    seed: seed ?? crypto.randomInt(2 ** 47),
    stop: stop.filter((s) => s !== ''),
    logprobs: chat ? body.logprobs === true : topLogprobs >= 0,
    topLogprobs: Math.max(topLogprobs, 0),
  };
}

/** Length of the longest prefix of `bytes` that ends on a whole UTF-8 character. */
function completeLength(bytes) {
  let i = bytes.length - 1;
  let back = 0;
  while (i >= 0 && back < 4 && (bytes[i] & 0xc0) === 0x80) {
    i -= 1;
    back += 1;
  }
  if (i < 0) return bytes.length;
  const lead = bytes[i];
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return bytes.length - i >= need ? bytes.length : i;
}

/**
 * Run the model and cut its output into pieces of text as a stream would send them: a token adds text once its
 * UTF-8 character is whole and no stop string could still begin in it (vLLM holds such text back too). A stop
 * string ends generation and is not part of the text.
 * @returns {{ pieces: {text: string, tokens: object[]}[], text: string, finish: string, stopReason: string|null, completionTokens: number }}
 */
function run(messages, adapter, params) {
  const bytes = [];
  const pieces = [];
  let sent = 0; // characters of text already in pieces
  let pending = [];
  let stopAt = -1;
  let stopReason = null;
  const visible = (text) => {
    if (stopAt >= 0) return text.slice(0, stopAt);
    let hold = 0;
    for (const s of params.stop) for (let k = Math.min(s.length - 1, text.length); k > hold; k--) if (s.startsWith(text.slice(text.length - k))) hold = k;
    return text.slice(0, text.length - hold);
  };
  const out = model.generate(messages, adapter, {
    maxTokens: params.maxTokens,
    temperature: params.temperature,
    topP: params.topP,
    seed: params.seed,
    topK: params.topLogprobs,
    onToken(token) {
      bytes.push(token.id);
      pending.push(token);
      const text = tokenizer.decode(bytes.slice(0, completeLength(bytes)));
      for (const s of params.stop) {
        const at = text.indexOf(s);
        if (at >= 0 && (stopAt < 0 || at < stopAt)) [stopAt, stopReason] = [at, s];
      }
      const show = visible(text);
      if (show.length > sent || stopAt >= 0) {
        pieces.push({ text: show.slice(sent), tokens: pending });
        sent = Math.max(sent, show.length);
        pending = [];
      }
      return stopAt < 0;
    },
  });
  const text = stopAt >= 0 ? tokenizer.decode(bytes).slice(0, stopAt) : tokenizer.decode(bytes);
  if (text.length > sent || pending.length > 0) pieces.push({ text: text.slice(sent), tokens: pending });
  return { pieces, text, finish: stopAt >= 0 ? 'stop' : out.finish, stopReason, completionTokens: out.tokens.length + (out.eos ? 1 : 0) };
}

const lpToken = (t) => ({ token: tokenizer.tokenString(t.id), logprob: t.logprob, bytes: tokenizer.tokenBytes(t.id) });

/** OpenAI's chat logprobs: one entry per token, each with its top alternatives. */
function chatLogprobs(tokens, params) {
  if (!params.logprobs) return null;
  return { content: tokens.map((t) => ({ ...lpToken(t), top_logprobs: t.top.slice(0, params.topLogprobs).map(lpToken) })) };
}

/** The legacy completions logprobs: parallel lists, top_logprobs as {token: logprob} maps. */
function completionLogprobs(tokens, params, offset) {
  if (!params.logprobs) return null;
  const out = { text_offset: [], token_logprobs: [], tokens: [], top_logprobs: [] };
  let at = offset;
  for (const t of tokens) {
    out.text_offset.push(at);
    out.tokens.push(tokenizer.tokenString(t.id));
    out.token_logprobs.push(t.logprob);
    out.top_logprobs.push(Object.fromEntries(t.top.slice(0, params.topLogprobs).map((x) => [tokenizer.tokenString(x.id), x.logprob])));
    at += t.id < 0x80 ? 1 : 0;
  }
  return out;
}

function sse(res, payload) {
  res.write(`data: ${JSON.stringify(payload)}\n\n`);
}

/**
 * Answer a generation request. `kind` is 'chat' or 'completion'; returns a JSON reply, or null after streaming.
 * @param {{ name: string, adapter: object | null, messages: object[], promptTokens: number, tokenDelayMs: number }} req
 */
async function respond(kind, body, req, res) {
  const chat = kind === 'chat';
  const params = samplingParams(body, req.promptTokens, chat);
  const result = run(req.messages, req.adapter, params);
  const usage = { prompt_tokens: req.promptTokens, total_tokens: req.promptTokens + result.completionTokens, completion_tokens: result.completionTokens };
  const id = `${chat ? 'chatcmpl' : 'cmpl'}-${crypto.randomBytes(16).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const object = chat ? 'chat.completion' : 'text_completion';
  if (body.stream !== true) {
    const tokens = result.pieces.flatMap((p) => p.tokens);
    const choice = chat
      ? { index: 0, message: { role: 'assistant', content: result.text, refusal: null, tool_calls: [] }, logprobs: chatLogprobs(tokens, params), finish_reason: result.finish, stop_reason: result.stopReason }
      : { index: 0, text: result.text, logprobs: completionLogprobs(tokens, params, 0), finish_reason: result.finish, stop_reason: result.stopReason };
    return { status: 200, json: { id, object, created, model: req.name, choices: [choice], usage } };
  }
  const includeUsage = Boolean(body.stream_options && body.stream_options.include_usage);
  const chunkObject = chat ? 'chat.completion.chunk' : 'text_completion';
  // vLLM serialises chunks with exclude_unset: no `usage` key on them, only on the final usage chunk.
  const chunk = (choices) => sse(res, { id, object: chunkObject, created, model: req.name, choices });
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  if (chat) chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
  let offset = 0;
  for (let i = 0; i < result.pieces.length; i++) {
    const p = result.pieces[i];
    if (req.tokenDelayMs > 0) await new Promise((r) => setTimeout(r, req.tokenDelayMs * p.tokens.length));
    const last = i === result.pieces.length - 1;
    const finish = last && !chat ? result.finish : null;
    if (chat) chunk([{ index: 0, delta: { content: p.text }, logprobs: chatLogprobs(p.tokens, params), finish_reason: null }]);
    else chunk([{ index: 0, text: p.text, logprobs: completionLogprobs(p.tokens, params, offset), finish_reason: finish, stop_reason: finish ? result.stopReason : null }]);
    offset += p.text.length;
  }
  if (chat) chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: result.finish, stop_reason: result.stopReason }]);
  else if (result.pieces.length === 0) chunk([{ index: 0, text: '', logprobs: null, finish_reason: result.finish, stop_reason: result.stopReason }]);
  if (includeUsage) sse(res, { id, object: chunkObject, created, model: req.name, choices: [], usage });
  res.end('data: [DONE]\n\n');
  return null;
}

module.exports = { MAX_MODEL_LEN, ApiError, samplingParams, completeLength, run, respond };
