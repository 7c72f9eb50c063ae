import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { FineTuningAccount } from './openai-stand-in-fine-tuning';

/**
 * A stand-in of OpenAI's chat completions API for tests and development (nothing real can be called from CI). It
 * follows the documented contract where loraplane depends on it:
 * - `Authorization: Bearer <key>`; a wrong or missing key is a 401 `invalid_api_key`.
 * - Reasoning models (o3-mini, o4-mini) refuse `temperature` and `max_tokens` with a 400 `unsupported_parameter`
 *   envelope naming the parameter (`max_tokens`: "Use 'max_completion_tokens' instead.").
 * - Unknown model: 404 `model_not_found`.
 * - `usage` with prompt/completion tokens, `prompt_tokens_details.cached_tokens` and, for reasoning models,
 *   `completion_tokens_details.reasoning_tokens` (billed as output, included in completion_tokens).
 * - `stream: true`: server-sent chunks (role, content, finish), a usage chunk with `choices: []` when
 *   `stream_options.include_usage`, then `data: [DONE]`.
 * - `rateLimit(model, n, retryAfterSeconds)`: the next n requests for the model get a 429 `rate_limit_exceeded`
 *   with `retry-after` (and `x-ratelimit-*`) headers, as OpenAI sends them.
 * - Files (list, retrieve, content) and fine-tuning jobs (list paged by `after`/`limit`, retrieve) in OpenAI's shapes:
 *   openai-stand-in-fine-tuning.ts; what the account holds is seeded by the test (`account`).
 * What each model answers is the test's business (`answer`): the stand-in imitates the API, not the models.
 */
export interface StandInOptions {
  apiKey: string;
  /** The reply for a request; default: "ok". */
  answer?: (model: string, messages: { role: string; content: unknown }[]) => string;
  /** Milliseconds before answering (a model's latency). */
  delayMs?: number;
  /** Reasoning tokens a reasoning model reports per request. */
  reasoningTokens?: number;
}

export interface StandInRequest {
  model: string;
  body: Record<string, unknown>;
  status: number;
  at: number;
}

const MODELS: Record<string, { reasoning: boolean }> = {
  'o3-mini': { reasoning: true },
  'o4-mini': { reasoning: true },
  'gpt-4o-mini': { reasoning: false },
};

export interface OpenAIStandIn {
  /** Base URL up to /v1, as the SDK's baseURL. */
  url: string;
  requests: StandInRequest[];
  /** The account's files and fine-tuning jobs (Files and Fine-tuning routes). */
  account: FineTuningAccount;
  rateLimit(model: string, times: number, retryAfterSeconds: number): void;
  setDelay(ms: number): void;
  close(): Promise<void>;
}

/** OpenAI counts BPE tokens; ~4 characters a token is close enough for a stand-in and deterministic. */
const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));
const textOf = (content: unknown) => (typeof content === 'string' ? content : Array.isArray(content) ? content.map((p) => (p as { text?: string }).text ?? '').join('') : '');

function envelope(res: http.ServerResponse, status: number, error: { message: string; type: string; param: string | null; code: string | null }, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `req_${randomBytes(8).toString('hex')}`, ...headers });
  res.end(JSON.stringify({ error }));
}

function refuseKey(req: http.IncomingMessage, res: http.ServerResponse) {
  const shown = (req.headers.authorization ?? '').replace(/^Bearer\s+/, '');
  envelope(res, 401, { message: `Incorrect API key provided: ${shown.slice(0, 3)}***${shown.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' });
}

export async function startOpenAIStandIn(opts: StandInOptions): Promise<OpenAIStandIn> {
  const account = new FineTuningAccount();
  const limits = new Map<string, { left: number; retryAfter: number }>();
  const requests: StandInRequest[] = [];
  let delayMs = opts.delayMs ?? 0;
  const sockets = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    const record = (model: string, body: Record<string, unknown>, status: number) => requests.push({ model, body, status, at: Date.now() });
    if (req.method === 'GET' && /^\/v1\/(files|fine_tuning\/jobs)\b/.test(req.url ?? '')) {
      if (req.headers.authorization !== `Bearer ${opts.apiKey}`) return refuseKey(req, res);
      if (account.handle(req, res, (message, param) => envelope(res, 404, { message, type: 'invalid_request_error', param, code: null }))) return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      return envelope(res, 404, { message: `Invalid URL (${req.method} ${req.url})`, type: 'invalid_request_error', param: null, code: null });
    }
    if (req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      record('', {}, 401);
      return refuseKey(req, res);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return envelope(res, 400, { message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)", type: 'invalid_request_error', param: null, code: null });
    }
    const model = String(body.model ?? '');
    // The account's own fine-tuned models are callable by it, as on OpenAI (not reasoning models).
    const spec = MODELS[model] ?? (account.jobs.some((j) => j.status === 'succeeded' && j.fine_tuned_model === model) ? { reasoning: false } : undefined);
    if (!spec) {
      record(model, body, 404);
      return envelope(res, 404, { message: `The model \`${model}\` does not exist or you do not have access to it.`, type: 'invalid_request_error', param: null, code: 'model_not_found' });
    }
    const limit = limits.get(model);
    if (limit && limit.left > 0) {
      limit.left--;
      record(model, body, 429);
      return envelope(
        res,
        429,
        { message: `Rate limit reached for ${model} in organization org-standin on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in ${limit.retryAfter}s.`, type: 'requests', param: null, code: 'rate_limit_exceeded' },
        { 'retry-after': String(limit.retryAfter), 'x-ratelimit-limit-requests': '3', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': `${limit.retryAfter}s` },
      );
    }
    if (spec.reasoning) {
      for (const param of ['temperature', 'max_tokens'] as const) {
        if (body[param] === undefined) continue;
        record(model, body, 400);
        const hint = param === 'max_tokens' ? " Use 'max_completion_tokens' instead." : '';
        return envelope(res, 400, { message: `Unsupported parameter: '${param}' is not supported with this model.${hint}`, type: 'invalid_request_error', param, code: 'unsupported_parameter' });
      }
    }
    const messages = body.messages as { role: string; content: unknown }[];
    if (!Array.isArray(messages) || messages.length === 0) {
      record(model, body, 400);
      return envelope(res, 400, { message: "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", type: 'invalid_request_error', param: 'messages', code: 'empty_array' });
    }
    record(model, body, 200);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const content = opts.answer ? opts.answer(model, messages) : 'ok';
    const reasoning = spec.reasoning ? (opts.reasoningTokens ?? 64) : 0;
    const promptTokens = messages.reduce((n, m) => n + tokens(textOf(m.content)) + 4, 3);
    const completion = tokens(content) + reasoning;
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const headers = { 'x-request-id': `req_${randomBytes(8).toString('hex')}`, 'openai-processing-ms': String(delayMs) };
    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers });
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: null, choices, ...extra })}\n\n`);
      const withUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
      chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], withUsage ? { usage: null } : {});
      chunk([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }], withUsage ? { usage: null } : {});
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], withUsage ? { usage: null } : {});
      if (withUsage) chunk([], { usage });
      res.end('data: [DONE]\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', ...headers });
    res.end(
      JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
        usage,
        service_tier: 'default',
        system_fingerprint: null,
      }),
    );
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    account,
    rateLimit(model, times, retryAfterSeconds) {
      limits.set(model, { left: times, retryAfter: retryAfterSeconds });
    },
    setDelay(ms) {
      delayMs = ms;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
