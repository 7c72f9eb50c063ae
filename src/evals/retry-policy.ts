/**
 * How long the runner waits before calling a target again after a 429/5xx. The server's own Retry-After wins (it
 * knows when its rate window reopens); otherwise exponential backoff with full jitter, so a run's many concurrent
 * items do not hit the target again in lockstep. Both are capped: a Retry-After of an hour would stall a run.
 */
export const MAX_WAIT_MS = 60_000;

export function retryDelayMs(attempt: number, baseMs: number, retryAfterMs: number | null, random: () => number = Math.random): number {
  if (retryAfterMs !== null) return Math.min(MAX_WAIT_MS, Math.max(0, retryAfterMs));
  const ceiling = Math.min(MAX_WAIT_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The time a target was busy answering: the length of the union of the [sent, sent + latency] intervals of its
 * answered requests. It is the wall time of the eval for that target without the gaps (a worker restart, a queue
 * wait), so throughput = tokens / busy time stays a measure of the target, not of the runner's interruptions.
 */
export function busyMs(intervals: readonly { startMs: number; durationMs: number }[]): number {
  const sorted = intervals.filter((i) => i.durationMs > 0).map((i) => [i.startMs, i.startMs + i.durationMs] as const).sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [from, to] = [Number.NaN, Number.NaN];
  for (const [s, e] of sorted) {
    if (Number.isNaN(from) || s > to) {
      if (!Number.isNaN(from)) total += to - from;
      [from, to] = [s, e];
    } else if (e > to) to = e;
  }
  return Number.isNaN(from) ? total : total + (to - from);
}
