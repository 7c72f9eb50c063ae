import type { ServerResponse } from 'node:http';
import { eventEnd, UpstreamAnswer, UpstreamError } from '../serving/openai-http';
import { writeHead } from './response-head';

export type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };

export interface RelayOutcome {
  usage: Usage | null;
  ttftMs: number | null;
  responseBytes: number;
  /** Set when the answer could not be passed on whole (the client already has the status line). */
  error: UpstreamError | null;
}

const MODEL_FIELD = /"model":\s*"(?:[^"\\]|\\.)*"/;

/** The first top-level `"model":"..."` of an OpenAI answer or chunk is the upstream's name: the client sees its own. */
export function renameModel(json: string, modelJson: string): string {
  return json.replace(MODEL_FIELD, () => `"model":${modelJson}`);
}

function toUsage(u: unknown): Usage | null {
  const v = u as Partial<Usage> | null | undefined;
  if (!v || typeof v.prompt_tokens !== 'number') return null;
  const completion = typeof v.completion_tokens === 'number' ? v.completion_tokens : 0;
  return { prompt_tokens: v.prompt_tokens, completion_tokens: completion, total_tokens: typeof v.total_tokens === 'number' ? v.total_tokens : v.prompt_tokens + completion };
}

/** Index just past the JSON object that starts at `from` (strings and nesting respected), -1 if it does not close. */
function objectEnd(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
    } else if (c === 0x7b /* { */) depth++;
    else if (c === 0x7d /* } */ && --depth === 0) return i + 1;
  }
  return -1;
}

/**
 * The usage block of a whole answer. OpenAI-compatible servers put it last at the top level, and a `"usage"` inside
 * the generated text is escaped (`\"usage\"`), so the last `"usage":` is the top-level one: only that small object
 * is parsed, not the whole answer (which can be long). Anything unexpected: the whole answer is parsed after all.
 */
export function usageOf(text: string): Usage | null {
  const at = text.lastIndexOf('"usage"');
  if (at < 0) return null;
  const m = /^"usage"\s*:\s*/.exec(text.slice(at, at + 40));
  const start = m ? at + m[0].length : -1;
  if (start >= 0 && text.startsWith('null', start)) return null;
  const end = start >= 0 && text.charCodeAt(start) === 0x7b ? objectEnd(text, start) : -1;
  try {
    if (end > 0) {
      const usage = toUsage(JSON.parse(text.slice(start, end)));
      if (usage) return usage;
    }
    return toUsage((JSON.parse(text) as { usage?: unknown }).usage);
  } catch {
    return null;
  }
}

/** A whole JSON answer: usage read from it, `model` renamed, sent on. */
export function relayJson(body: Buffer, status: number, res: ServerResponse, clientModel: string): RelayOutcome {
  const text = body.toString('utf8');
  const usage = usageOf(text);
  const out = renameModel(text, JSON.stringify(clientModel));
  const bytes = Buffer.byteLength(out);
  writeHead(res, status, { 'content-type': 'application/json', 'content-length': bytes });
  res.end(out);
  return { usage, ttftMs: null, responseBytes: bytes, error: null };
}

export interface StreamRelayOptions {
  clientModel: string;
  /** The client asked for the usage chunk (stream_options.include_usage); else it is read and dropped. */
  forwardUsage: boolean;
  maxEventBytes: number;
  maxTotalBytes: number;
  startedAt: number;
}

/**
 * One event of a stream on its way to the client: its usage read (and the usage-only chunk dropped unless the client
 * asked for it), the time to the first token noted, `model` renamed. Null: nothing to send.
 */
function transformEvent(event: string, outcome: RelayOutcome, opts: StreamRelayOptions, modelJson: string): string | null {
  const data = event.startsWith('data: ') ? event.slice(6) : event.startsWith('data:') ? event.slice(5) : null;
  if (data === null || data.startsWith('[DONE]')) return event;
  if (data.includes('"usage":{')) {
    try {
      const chunk = JSON.parse(data) as { usage?: unknown; choices?: unknown[] };
      outcome.usage = toUsage(chunk.usage) ?? outcome.usage;
      if (!opts.forwardUsage && Array.isArray(chunk.choices) && chunk.choices.length === 0) return null;
    } catch {
      // not one JSON object per event: pass it on untouched
    }
  } else if (outcome.ttftMs === null && data.includes('"choices":[{')) {
    outcome.ttftMs = performance.now() - opts.startedAt;
  }
  return renameModel(event, modelJson);
}

/**
 * Server-sent events passed through event by event as they arrive: never the whole answer in memory, and the
 * upstream paused whenever the client's socket is full (backpressure). Each event's `model` is renamed; the usage
 * chunk is read for metering and forwarded only when the client asked for it. A stream that breaks off, or
 * outgrows the limits, ends with an OpenAI error event (the status line is long gone).
 */
export function relayStream(upstream: UpstreamAnswer, res: ServerResponse, opts: StreamRelayOptions): Promise<RelayOutcome> {
  const modelJson = JSON.stringify(opts.clientModel);
  return new Promise((resolve) => {
    const outcome: RelayOutcome = { usage: null, ttftMs: null, responseBytes: 0, error: null };
    let buffered = '';
    let total = 0;
    let done = false;
    writeHead(res, 200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();

    const finish = (error: UpstreamError | null) => {
      if (done) return;
      done = true;
      upstream.removeListener('data', onData);
      // The upstream broke because the client left (its abort destroyed the upstream request): say so.
      outcome.error = error && res.destroyed ? new UpstreamError('the client closed the connection', 'aborted') : error;
      if (error && !res.destroyed) {
        const event = `data: ${JSON.stringify({ error: { message: error.message, type: 'server_error', param: null, code: 'upstream_error' } })}\n\n`;
        outcome.responseBytes += event.length;
        res.end(event);
        upstream.destroy();
      } else if (!res.destroyed) {
        if (buffered.trim() !== '') send(transform(buffered));
        res.end();
      }
      resolve(outcome);
    };

    const transform = (event: string) => transformEvent(event, outcome, opts, modelJson);

    const send = (text: string | null) => {
      if (text === null) return true;
      const piece = `${text}\n\n`;
      outcome.responseBytes += piece.length;
      return res.write(piece);
    };

    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > opts.maxTotalBytes) return finish(new UpstreamError(`the stream exceeded the limit of ${opts.maxTotalBytes} bytes and was cut off`, 'too_large'));
      buffered += chunk.toString('utf8');
      let end: number;
      let ok = true;
      while ((end = eventEnd(buffered)) >= 0) {
        const event = buffered.slice(0, end);
        const sep = buffered.startsWith('\r\n\r\n', end) ? 4 : 2;
        buffered = buffered.slice(end + sep);
        ok = send(transform(event)) && ok;
      }
      if (buffered.length > opts.maxEventBytes) return finish(new UpstreamError(`one event of the stream exceeded ${opts.maxEventBytes} bytes`, 'too_large'));
      if (!ok && !res.destroyed) {
        upstream.pause();
        res.once('drain', () => upstream.resume());
      }
    };

    upstream.on('data', onData);
    upstream.once('end', () => finish(null));
    upstream.once('error', (err) => finish(err instanceof UpstreamError ? err : new UpstreamError(`the stream broke off: ${err.message}`, 'invalid', null, null, null, { cause: err })));
    upstream.once('aborted', () => finish(new UpstreamError('the stream broke off', 'invalid')));
    // The client went away: stop reading (the caller aborts the upstream request).
    res.once('close', () => {
      if (!done) {
        done = true;
        upstream.destroy();
        outcome.error = new UpstreamError('the client closed the connection', 'aborted');
        resolve(outcome);
      }
    });
  });
}
