import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * Headers decided before the answer exists (admission's x-ratelimit-*), held until the head is written, then sent
 * with it in one writeHead. `res.setHeader` for each of them made node take writeHead's slow path (every header set
 * one by one, then merged): about 5 us a request in the gateway's profile with limits on.
 */
const pending = new WeakMap<ServerResponse, Record<string, string>>();

export function headersForHead(res: ServerResponse, headers: Record<string, string>): void {
  const held = pending.get(res);
  pending.set(res, held ? { ...held, ...headers } : headers);
}

/**
 * res.writeHead with the held headers (the ones given here win on a clash). The entry goes at once: left for the
 * garbage collector, every answered response stayed in the table until its object died, and the collector's
 * ephemeron work on that table showed in the gateway's profile with limits on.
 */
export function writeHead(res: ServerResponse, status: number, headers: OutgoingHttpHeaders): void {
  const held = pending.get(res);
  if (held) pending.delete(res);
  // Added to the held object (this response's own) rather than spread into a new one: the spread showed in the profile.
  res.writeHead(status, held ? Object.assign(held, headers) : headers);
}
