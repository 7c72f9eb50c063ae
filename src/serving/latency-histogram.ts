/**
 * Log-scale latency buckets (each 10 % wider than the last, from 1 ms to about 20 minutes): small enough to add up
 * in Redis field by field across gateway replicas and minutes, fine enough that a percentile read back from them is
 * within 5 % of the exact one.
 */
const RATIO = 1.1;
const LOG_RATIO = Math.log(RATIO);
export const LATENCY_BUCKETS = 150;

export function bucketOf(ms: number): number {
  if (!(ms > 1)) return 0;
  return Math.min(LATENCY_BUCKETS - 1, Math.ceil(Math.log(ms) / LOG_RATIO));
}

/** The bucket's representative value: the geometric middle of its bounds (RATIO^(i-1), RATIO^i]. */
export function valueOf(bucket: number): number {
  if (bucket === 0) return 1;
  return Math.pow(RATIO, bucket - 0.5);
}

/** Nearest-rank percentile (0-100) over bucket counts; null when empty. */
export function percentile(counts: Map<number, number>, p: number): number | null {
  let n = 0;
  for (const c of counts.values()) n += c;
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (const bucket of [...counts.keys()].sort((a, b) => a - b)) {
    seen += counts.get(bucket)!;
    if (seen >= rank) return Math.round(valueOf(bucket) * 10) / 10;
  }
  return null;
}
