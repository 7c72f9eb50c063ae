/** What an end-to-end call returns: the status, the body parsed as JSON (null when it is not JSON) and the raw text. */
export interface ApiResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
  type: string;
}

export type ApiCall = (method: string, route: string, body?: unknown, as?: string, headers?: Record<string, string>) => Promise<ApiResponse>;

/**
 * The one HTTP helper of the end-to-end specs: `api(method, route, body?, key?, headers?)` against a running app,
 * with a JSON body when one is given and the bearer key of the suite (or `as`). `target` is read on every call, so a
 * suite can build its helper before `beforeAll` starts the app (or after it restarts one). Routes are relative to
 * `prefix` ('/v1' unless told otherwise).
 */
export function apiClient(target: () => { url: string; key: string }, opts: { prefix?: string; onText?: (method: string, text: string) => void } = {}): ApiCall {
  const prefix = opts.prefix ?? '/v1';
  return async (method, route, body, as, headers = {}) => {
    const { url, key } = target();
    const res = await fetch(`${url}${prefix}${route}`, {
      method: method.toUpperCase(),
      headers: { authorization: `Bearer ${as ?? key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    opts.onText?.(method.toUpperCase(), text);
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null; // not JSON (a stream, an HTML page): the caller reads `text`
    }
    return { status: res.status, body: json, text, type: res.headers.get('content-type') ?? '' };
  };
}
