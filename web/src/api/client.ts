import createClient from 'openapi-fetch';
import type { paths } from './openapi';

/**
 * The one API client: typed by the OpenAPI document the server builds from its own zod schemas (openapi.d.ts is
 * generated at build time). JSON is what it reads: a report route's Markdown and HTML forms are for people. The key lives in sessionStorage only (gone when the tab closes) and travels only in
 * the Authorization header, never in a URL.
 */
const KEY = 'loraplane.apiKey';
export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  signIn: (key: string) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

export const api = createClient<paths, 'application/json'>({ baseUrl: location.origin });
api.use({
  onRequest({ request }) {
    const key = session.key();
    if (key) request.headers.set('authorization', `Bearer ${key}`);
    return request;
  },
});

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

interface Envelope {
  error?: { message?: string; param?: string | null; code?: string | null };
}

/**
 * Unwraps an openapi-fetch result: the data, typed by the route's response schema in the OpenAPI document, or an
 * ApiError carrying the server's message (shown as it is).
 */
export async function call<T>(request: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await request;
  if (!response.ok || error !== undefined) {
    const e = (error ?? {}) as Envelope;
    throw new ApiError(response.status, e.error?.message ?? `${response.status} ${response.statusText}`, e.error?.param ?? null, e.error?.code ?? null);
  }
  return data as T;
}

/** One event-stream block (lines up to a blank line); null for a comment-only block. */
function parseSseBlock(block: string): SseMessage | null {
  const m: SseMessage = { event: 'message', data: '' };
  const data: string[] = [];
  for (const line of block.split('\n')) {
    const i = line.indexOf(':');
    if (i === 0) continue;
    const field = i < 0 ? line : line.slice(0, i);
    const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') m.event = v;
    else if (field === 'data') data.push(v);
    else if (field === 'id') m.id = v;
  }
  if (!data.length && m.event === 'message') return null;
  m.data = data.join('\n');
  return m;
}

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * Reads a server-sent event stream with fetch, because EventSource cannot send an Authorization header (and a key
 * in the URL would end up in logs). Resolves when the stream ends or `signal` aborts.
 */
export async function readSse(url: string, init: RequestInit, onMessage: (m: SseMessage) => void, signal: AbortSignal): Promise<void> {
  const key = session.key();
  const headers = new Headers(init.headers);
  if (key) headers.set('authorization', `Bearer ${key}`);
  headers.set('accept', 'text/event-stream');
  const res = await fetch(url, { ...init, headers, signal });
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => ({}))) as Envelope;
    throw new ApiError(res.status, body.error?.message ?? `${res.status} ${res.statusText}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // One pass over each chunk with a moving index, and one slice at the end: a stream of tens of megabytes
      // (50,000 metric events) must not be copied once per message.
      buffer += value.replace(/\r\n?/g, '\n');
      let start = 0;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n', start)) {
        const message = parseSseBlock(buffer.slice(start, end));
        start = end + 2;
        if (message) onMessage(message);
      }
      buffer = buffer.slice(start);
    }
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
}
