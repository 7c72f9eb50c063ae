import { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * The gateway's responses (createGatewayServer passes it as node's ServerResponse class): one field more, present
 * on every response from its construction, for the headers decided before the answer exists (admission's
 * x-ratelimit-*), which are held until the head is written and then sent with it in one writeHead.
 *
 * Why not res.setHeader for each: it made node take writeHead's slow path (every header set one by one, then
 * merged), about 5 us a request with limits on. Why not a WeakMap from response to headers (what this was): a
 * WeakMap entry per request, and the collector's ephemeron upkeep, showed in the gateway's profile with limits on.
 */
export class GatewayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  heldHeaders: Record<string, string> | null = null;
  /** The gateway role's request id (gateway.server.ts), sent as x-request-id with the head; null: not set here. */
  requestId: string | null = null;
}

/** A plain ServerResponse (a test's server) works too: the field is then added on first use. */
const asGateway = (res: ServerResponse) => res as GatewayResponse;

export function headersForHead(res: ServerResponse, headers: Record<string, string>): void {
  const r = asGateway(res);
  r.heldHeaders = r.heldHeaders ? { ...r.heldHeaders, ...headers } : headers;
}

/**
 * The request's id, as the client gets it in x-request-id (OpenAI's header; the openai SDKs show it as
 * `_request_id`): set by the gateway role's server, or in the `all` role by the API's middleware (set on `res`).
 */
export function requestIdOf(res: ServerResponse): string | null {
  const header = asGateway(res).requestId ?? res.getHeader('x-request-id');
  return typeof header === 'string' ? header : null;
}

/** res.writeHead with the held headers (the ones given here win on a clash) and the request id. */
export function writeHead(res: ServerResponse, status: number, headers: OutgoingHttpHeaders): void {
  const r = asGateway(res);
  const held = r.heldHeaders;
  if (held) r.heldHeaders = null;
  // Added to the held object (this response's own) rather than spread into a new one: the spread showed in the profile.
  const out = held ? Object.assign(held, headers) : headers;
  if (r.requestId) out['x-request-id'] = r.requestId;
  res.writeHead(status, out);
}
