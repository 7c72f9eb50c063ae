/**
 * A comparison of eval targets rendered for people and machines: the JSON of the comparison (keys sorted, so two
 * runs diff cleanly), Markdown for a PR comment or a terminal, and (report-html.ts) a self-contained HTML page. The
 * comparison is computed elsewhere; this file only formats it, and treats every name, prompt and output in it as
 * untrusted text: eval items and target names come from users.
 */
import { z } from 'zod';
import { comparisonReport, reportTarget } from './report-schema';

export type TargetKind = ComparisonTarget['kind'];
export type ComparisonTarget = z.infer<typeof reportTarget>;
/** One item of one target: an item whose request failed is not correct, and `error` says why. */
export type ItemResult = ComparisonTarget['results'][number];
/** A run's comparison of its targets (report-schema.ts describes each field). */
export type Comparison = z.infer<typeof comparisonReport>;

export function reportJson(c: Comparison): string {
  return sortedJson(c);
}

/** JSON with keys sorted at every level, so two reports diff cleanly. */
export function sortedJson(v: unknown): string {
  return `${JSON.stringify(sortKeys(v), null, 2)}\n`;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
}

export interface ItemDiff {
  target: string;
  baseline: string;
  /** The target right, the baseline wrong. */
  wins: { index: number; prompt: string }[];
  /** The target wrong, the baseline right. */
  losses: { index: number; prompt: string }[];
}

/** Every non-baseline target against the baseline, on the items both answered (present in both result lists). */
export function itemDiffs(c: Comparison): ItemDiff[] {
  const base = c.targets.find((t) => t.name === c.baseline);
  if (!base) return [];
  const prompts = new Map(c.items.map((i) => [i.index, i.prompt]));
  const baseCorrect = new Map(base.results.map((r) => [r.index, r.correct]));
  return c.targets
    .filter((t) => t !== base)
    .map((t) => {
      const diff: ItemDiff = { target: t.name, baseline: base.name, wins: [], losses: [] };
      for (const r of [...t.results].sort((a, b) => a.index - b.index)) {
        const b = baseCorrect.get(r.index);
        if (b === undefined || b === r.correct) continue;
        (r.correct ? diff.wins : diff.losses).push({ index: r.index, prompt: prompts.get(r.index) ?? '' });
      }
      return diff;
    });
}

/** The volumes any target was projected at, ascending: the monthly-cost columns. */
export function projectedVolumes(c: Comparison): number[] {
  return [...new Set(c.targets.flatMap((t) => t.monthly.map((m) => m.tokens_per_day)))].sort((a, b) => a - b);
}

export const MAX_DIFF_ITEMS = 50;

/**
 * The summary table's figure columns (accuracy through monthly cost), formatted but not escaped: the Markdown and
 * HTML reports add the name, kind and break-even columns around them in their own escaping.
 */
export function summaryColumns(c: Comparison): { head: string[]; cells: (t: ComparisonTarget) => string[] } {
  const volumes = projectedVolumes(c);
  return {
    head: ['Accuracy', '95% CI', 'p50 ms', 'p95 ms', 'p99 ms', 'TTFT p50 ms', 'Tokens in / out', '$/request', '$/1M tokens', ...volumes.map((v) => `$/month @ ${count(v)}/day`)],
    cells: (t) => [
      `${percent(t.accuracy.rate)} (${t.accuracy.k}/${t.accuracy.n})`,
      `${percent(t.accuracy.low)} – ${percent(t.accuracy.high)}`,
      ms(t.latency_ms.p50),
      ms(t.latency_ms.p95),
      ms(t.latency_ms.p99),
      ms(t.ttft_ms_p50),
      `${count(t.tokens.input)} / ${count(t.tokens.output)}`,
      usd(t.usd_per_request),
      usd(t.usd_per_1m_tokens),
      ...volumes.map((v) => usd(t.monthly.find((m) => m.tokens_per_day === v)?.usd_per_month ?? null)),
    ],
  };
}

export function reportMarkdown(c: Comparison): string {
  const columns = summaryColumns(c);
  const head = ['Target', 'Kind', ...columns.head, 'Break-even'];
  const rows = c.targets.map((t) => [`${md(t.name)} (${md(t.model)})`, t.kind, ...columns.cells(t), breakEvenText(t, md)]);
  const table = [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const out = [
    `# Eval: ${md(c.suite.name)}`,
    '',
    `${c.suite.items} items, scorer \`${c.suite.scorer.replace(/`/g, "'")}\`, ${md(c.created_at)}. Accuracy intervals are 95% Wilson; latency percentiles are nearest-rank; monthly costs assume a 30-day month and, for self-hosted targets, replicas running 24/7.`,
    '',
    table,
  ];
  for (const d of itemDiffs(c)) {
    out.push('', `## ${md(d.target)} vs ${md(d.baseline)}: ${d.wins.length} wins, ${d.losses.length} losses`);
    for (const [title, list] of [['Wins', d.wins], ['Losses', d.losses]] as const) {
      if (list.length === 0) continue;
      out.push('', `### ${title} (${title === 'Wins' ? `${md(d.target)} right, ${md(d.baseline)} wrong` : `${md(d.target)} wrong, ${md(d.baseline)} right`})`, '');
      for (const i of list.slice(0, MAX_DIFF_ITEMS)) out.push(`- #${i.index}: ${md(preview(i.prompt))}`);
      if (list.length > MAX_DIFF_ITEMS) out.push(`- … and ${list.length - MAX_DIFF_ITEMS} more`);
    }
  }
  return `${out.join('\n')}\n`;
}

export function breakEvenText(t: ComparisonTarget, escape: (s: string) => string): string {
  if (t.break_even.length === 0) return '—';
  return t.break_even
    .map((b) => `vs ${escape(b.api_target)}: ${b.tokens_per_day === null ? 'never' : `${count(b.tokens_per_day)}/day`}`)
    .join('; ');
}

/**
 * Markdown that renders as the literal text: HTML-significant characters become entities (renderers pass raw HTML
 * through), Markdown syntax is backslash-escaped, and line breaks become spaces so a cell stays one cell.
 */
export function md(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|#~!]/g, (ch) => `\\${ch}`)
    .replace(/\s+/g, ' ')
    .trim();
}

/** One line, at most `max` characters. */
export function preview(s: string, max = 100): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export const percent = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
export const ms = (x: number | null) => (x === null ? '—' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));

export function usd(x: number | null): string {
  if (x === null) return '—';
  if (x === 0) return '$0';
  if (x >= 100) return `$${Math.round(x).toLocaleString('en-US')}`;
  if (x >= 1) return `$${x.toFixed(2)}`;
  return `$${Number(x.toPrecision(3))}`;
}

/** 1500 -> 1.5k, 48000000 -> 48M. */
export function count(n: number): string {
  for (const [unit, size] of [['B', 1e9], ['M', 1e6], ['k', 1e3]] as const) {
    if (Math.abs(n) >= size) return `${Number((n / size).toPrecision(3))}${unit}`;
  }
  return String(Math.round(n));
}
