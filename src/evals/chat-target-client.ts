import { Injectable } from '@nestjs/common';
import { refusedCause, TargetGuard } from '../common/net/target-guard';
import { Config } from '../config/config';

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

/** The wait a 429/503 asks for, from `retry-after-ms` (OpenAI's) or `retry-after` (RFC 9110: seconds or a date). */
export function retryAfterMs(headers: Headers, now = Date.now()): number | null {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

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

  constructor(config: Config, private readonly guard: TargetGuard) {
    this.timeoutMs = config.env.EVAL_REQUEST_TIMEOUT_MS;
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
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(`${endpoint.baseUrl.replace(/\/+$/, '')}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}) },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        dispatcher: this.guard.dispatcher,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const refused = refusedCause(err);
      if (refused) throw new ChatCallError(`${endpoint.model}: ${refused.message}`, null, false, null, { cause: err });
      throw new ChatCallError(`${endpoint.model}: ${timeout.aborted ? `no answer within ${this.timeoutMs} ms` : `request failed: ${(err as Error).message}`}`, null, true, null, { cause: err });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      // Only an OpenAI error envelope's message is shown: whatever else answered (an internal service behind an
      // allowed network, a proxy's page) is not echoed to the tenant.
      let message = 'the answer is not an OpenAI error object';
      try {
        message = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? message).slice(0, 300);
      } catch {
        // not JSON: the generic sentence above
      }
      const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
      throw new ChatCallError(`${endpoint.model} answered ${res.status}: ${message}`, res.status, retryable, retryAfterMs(res.headers));
    }
    try {
      return endpoint.stream ? await this.readStream(res, t0) : await this.readJson(res, t0);
    } catch (err) {
      if (err instanceof ChatCallError || signal?.aborted) throw err;
      // The body broke off or was not what the API promises: the server's fault, worth another try.
      throw new ChatCallError(`${endpoint.model}: unreadable answer: ${(err as Error).message}`, res.status, true, null, { cause: err });
    }
  }

  private async readJson(res: Response, t0: number): Promise<ChatAnswer> {
    const body = (await res.json()) as { choices?: { message?: { content?: string | null } }[]; usage?: UsageBody };
    const latencyMs = performance.now() - t0;
    if (!Array.isArray(body.choices)) throw new Error('no choices in the answer');
    return { content: body.choices[0]?.message?.content ?? '', latencyMs, ttftMs: null, usage: toUsage(body.usage) };
  }

  /** Server-sent events: `data: {chunk}` lines until `data: [DONE]`; usage arrives in a last chunk without choices. */
  private async readStream(res: Response, t0: number): Promise<ChatAnswer> {
    if (!res.body) throw new Error('no body');
    const decoder = new TextDecoder();
    let buffered = '';
    let content = '';
    let ttftMs: number | null = null;
    let usage: ChatAnswer['usage'] = null;
    let done = false;
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(bytes, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
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
    }
    if (!done) throw new Error('the stream ended without [DONE]');
    return { content, latencyMs: performance.now() - t0, ttftMs, usage };
  }
}
