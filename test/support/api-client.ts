import { expectDocumented } from './api-contract';

/** What an end-to-end call returns: the status, the body parsed as JSON (null when it is not JSON), the raw text and the headers. */
export interface ApiResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
  type: string;
  headers: Headers;
}

export type ApiCall = (method: string, route: string, body?: unknown, as?: string, headers?: Record<string, string>) => Promise<ApiResponse>;

/**
 * The one HTTP helper of the end-to-end specs: `api(method, route, body?, key?, headers?)` against a running app,
 * with a JSON body when one is given (multipart when it is a FormData) and the bearer key of the suite (or `as`). `target` is read on every call, so a
 * suite can build its helper before `beforeAll` starts the app (or after it restarts one). Routes are relative to
 * `prefix` ('/v1' unless told otherwise). Every 2xx JSON answer is checked against its route's schema in the
 * OpenAPI document (api-contract.ts): a spec exercising a route also proves the generated client types true.
 */
export function apiClient(target: () => { url: string; key: string }, opts: { prefix?: string; onText?: (method: string, text: string) => void } = {}): ApiCall {
  const prefix = opts.prefix ?? '/v1';
  return async (method, route, body, as, headers = {}) => {
    const { url, key } = target();
    const json = body !== undefined && !(body instanceof FormData);
    const send = () =>
      fetch(`${url}${prefix}${route}`, {
        method: method.toUpperCase(),
        headers: { authorization: `Bearer ${as ?? key}`, ...(json ? { 'content-type': 'application/json' } : {}), ...headers },
        body: json ? JSON.stringify(body) : (body as FormData | undefined),
      });
    // A GET on a kept-alive socket the server closed as idle at that moment fails with a reset before any answer
    // (a stalled event loop, under the full suite's load, makes that race likely): a read is safe to send again.
    const res = await send().catch((err: Error & { cause?: { code?: string } }) => {
      if (method.toUpperCase() === 'GET' && ['ECONNRESET', 'UND_ERR_SOCKET'].includes(err.cause?.code ?? '')) return send();
      throw err;
    });
    const text = await res.text();
    opts.onText?.(method.toUpperCase(), text);
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null; // not JSON (a stream, an HTML page): the caller reads `text`
    }
    const type = res.headers.get('content-type') ?? '';
    if (res.ok && parsed !== null && type.includes('application/json')) expectDocumented(method, `${prefix}${route}`, parsed);
    return { status: res.status, body: parsed, text, type, headers: res.headers };
  };
}
