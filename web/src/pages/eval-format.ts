import type { ComparisonTarget, Proportion } from '../api/views';
import { pct } from '../components/ui';

/** 1000000 -> "1M": the daily volumes of the cost columns. */
export const fmtCount = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));
export const ms = (x: number | null) => (x === null ? '—' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));

/** "60.0% [31.3–83.2%] (6/10)": an accuracy with its 95% Wilson interval and counts. */
export const interval = (p: Proportion | undefined) => (p && p.n > 0 ? `${pct(p.rate)} [${pct(p.low)}–${pct(p.high)}] (${p.k}/${p.n})` : '—');

export function breakEven(t: ComparisonTarget): string {
  if (!t.break_even.length) return '—';
  return t.break_even
    .map((b) => (b.tokens_per_day === null ? `never vs ${b.api_target}` : `from ${fmtCount(b.tokens_per_day)} tokens/day vs ${b.api_target}`))
    .join('; ');
}
