import { Injectable } from '@nestjs/common';
import { Config } from '../config/config';
import { sseData, statusError, UpstreamAnswer, UpstreamError } from '../serving/openai-http';
import { OpenAIHttpClient } from '../serving/openai-http.client';

/** Where and how to call one target: an OpenAI-compatible `/chat/completions` and the request's shape. */
export interface ChatEndpoint {
  /** Ends before `/chat/completions`, e.g. `https://api.openai.com/v1` or `http://10.0.0.5:8000/v1`. */
  baseUrl: string;
  apiKey: string | null;
  model: string;
  /** o-series: `max_completion_tokens`, and no `temperature` (OpenAI refuses both the other way round). */
  reasoning: boolean;
  maxTokens: number;
  temperature: number | null;
  stream: boolean;
  /** Counts the call in flight on its replica (pool targets) until the returned function runs. */
  acquire?: () => () => void;
}

export interface ChatMessage {
  role: string;
  content?: unknown;
}

export interface ChatAnswer {
  content: string;
  latencyMs: number;
  /** Time to the first content token; null when not streamed. */
  ttftMs: number | null;
  usage: { input: number; cachedInput: number; output: number; reasoning: number } | null;
}

/**
 * A call that did not produce an answer. `retryable`: 429, 5xx, a timeout or a dropped connection (the same call may
 * work later); anything else (400 bad parameter, 401 key, 404 model) will fail the same way again.
 */
export class ChatCallError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly retryable: boolean,
    /** From `retry-after-ms` or `retry-after` (seconds or an HTTP date), when the server said. */
    readonly retryAfterMs: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ChatCallError';
  }
}

export { retryAfterMs } from '../serving/openai-http';

interface UsageBody {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

const toUsage = (u: UsageBody | null | undefined): ChatAnswer['usage'] =>
  u && typeof u.prompt_tokens === 'number'
    ? { input: u.prompt_tokens, cachedInput: u.prompt_tokens_details?.cached_tokens ?? 0, output: u.completion_tokens ?? 0, reasoning: u.completion_tokens_details?.reasoning_tokens ?? 0 }
    : null;

/**
 * The one class that talks to eval targets: OpenAI's chat completions API and everything that imitates it (vLLM,
 * the tiny server). Vendor errors become ChatCallError; nothing here retries (the runner decides, honouring
 * Retry-After).
 */
@Injectable()
export class ChatTargetClient {
  private readonly timeoutMs: number;
  private readonly streamLimits: { maxEventBytes: number; maxTotalBytes: number };

  constructor(config: Config, private readonly http: OpenAIHttpClient) {
    this.timeoutMs = config.env.EVAL_REQUEST_TIMEOUT_MS;
    this.streamLimits = { maxEventBytes: config.env.UPSTREAM_MAX_RESPONSE_BYTES, maxTotalBytes: config.env.UPSTREAM_MAX_STREAM_BYTES };
  }

  async complete(endpoint: ChatEndpoint, messages: ChatMessage[], signal?: AbortSignal): Promise<ChatAnswer> {
    const body: Record<string, unknown> = { model: endpoint.model, messages };
    if (endpoint.reasoning) body.max_completion_tokens = endpoint.maxTokens;
    else {
      body.max_tokens = endpoint.maxTokens;
      if (endpoint.temperature !== null) body.temperature = endpoint.temperature;
    }
    if (endpoint.stream) {
      body.stream = true;
      body.stream_options = { include_usage: true };
    }
    const release = endpoint.acquire?.();
    try {
      return await this.call(endpoint, body, signal);
    } finally {
      release?.();
    }
  }

  private async call(endpoint: ChatEndpoint, body: Record<string, unknown>, signal?: AbortSignal): Promise<ChatAnswer> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const t0 = performance.now();
    let res: UpstreamAnswer;
    try {
      res = await this.http.open({
        url: `${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}) },
        body: JSON.stringify(body),
        timeoutMs: this.timeoutMs,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const message = timeout.aborted ? `no answer within ${this.timeoutMs} ms` : `request failed: ${(err as Error).message}`;
      // A refused address stays refused: recorded once, not retried.
      const refused = err instanceof UpstreamError && err.kind === 'refused';
      throw new ChatCallError(`${endpoint.model}: ${message}`, null, !refused, null, { cause: err });
    }
    const status = res.statusCode ?? 0;
    try {
      if (status < 200 || status >= 300) {
        const text = (await this.http.readCapped(res)).toString('utf8');
        const err = statusError(endpoint.model, status, res.headers, text);
        const retryable = status === 429 || status === 408 || status >= 500;
        throw new ChatCallError(`${endpoint.model} answered ${status}: ${err.envelope?.message}`, status, retryable, err.retryAfterMs);
      }
      return endpoint.stream ? await this.readStream(res, t0) : await this.readJson(res, t0);
    } catch (err) {
      if (err instanceof ChatCallError || signal?.aborted) throw err;
      // An over-cap answer will be as large next time: not worth a retry. Anything else broken is the server's fault.
      const retryable = !(err instanceof UpstreamError && err.kind === 'too_large');
      throw new ChatCallError(`${endpoint.model}: unreadable answer: ${(err as Error).message}`, status, retryable, null, { cause: err });
    }
  }

  private async readJson(res: UpstreamAnswer, t0: number): Promise<ChatAnswer> {
    const body = JSON.parse((await this.http.readCapped(res)).toString('utf8')) as { choices?: { message?: { content?: string | null } }[]; usage?: UsageBody };
    const latencyMs = performance.now() - t0;
    if (!Array.isArray(body.choices)) throw new Error('no choices in the answer');
    return { content: body.choices[0]?.message?.content ?? '', latencyMs, ttftMs: null, usage: toUsage(body.usage) };
  }

  /** Server-sent events: `data: {chunk}` until `data: [DONE]`; usage arrives in a last chunk without choices. */
  private async readStream(res: UpstreamAnswer, t0: number): Promise<ChatAnswer> {
    let content = '';
    let ttftMs: number | null = null;
    let usage: ChatAnswer['usage'] = null;
    let done = false;
    for await (const data of sseData(res, this.streamLimits)) {
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data) as { choices?: { delta?: { content?: string | null } }[]; usage?: UsageBody | null; error?: { message?: string } };
      if (chunk.error) throw new ChatCallError(`stream error: ${chunk.error.message ?? 'unknown'}`, null, true, null);
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        ttftMs ??= performance.now() - t0;
        content += piece;
      }
      if (chunk.usage) usage = toUsage(chunk.usage);
    }
    if (!done) throw new Error('the stream ended without [DONE]');
    return { content, latencyMs: performance.now() - t0, ttftMs, usage };
  }
}
