/**
 * A comparison across benchmarks rendered for people and machines, in the shape such comparisons publish: accuracy
 * per benchmark x target with its 95% interval; latency p50/p95 and time to first token; tokens; $ per 1M tokens and
 * per month at 1M and 10M tokens a day; self-hosted GPU $/hour against API $/token with the break-even volume. Pure:
 * per-suite Comparisons (comparison.ts) and one over every suite's rows come from the caller. Every name is user text
 * and is escaped (report.ts `md`, report-html.ts `esc`).
 */
import { z } from 'zod';
import { DEFAULT_DAILY_VOLUMES } from './cost-model';
import { esc } from './report-html';
import { breakEvenText, Comparison, ComparisonTarget, count, md, ms, percent, usd } from './report';
import { benchmarkReport } from './report-schema';
import { Proportion } from './stats';

/** A comparison's report across its suites (report-schema.ts describes each field). */
export type BenchmarkReport = z.infer<typeof benchmarkReport>;

const DAILY_VOLUMES = DEFAULT_DAILY_VOLUMES;

export function buildBenchmarkReport(input: Omit<BenchmarkReport, 'benchmarks'> & { suites: Comparison[] }): BenchmarkReport {
  const { suites, ...rest } = input;
  return {
    ...rest,
    benchmarks: suites.map((c) => ({
      suite: c.suite.name,
      scorer: c.suite.scorer,
      items: c.suite.items,
      accuracy: Object.fromEntries(c.targets.map((t) => [t.name, t.accuracy])),
    })),
  };
}

const interval = (p: Proportion | undefined) => (p && p.n > 0 ? `${percent(p.rate)} [${percent(p.low)}–${percent(p.high)}] (${p.k}/${p.n})` : '—');
const monthly = (t: ComparisonTarget, v: number) => usd(t.monthly.find((m) => m.tokens_per_day === v)?.usd_per_month ?? null);
const perRequest = (t: ComparisonTarget) => {
  const n = t.results.length;
  return n > 0 ? count((t.tokens.input + t.tokens.output) / n) : '—';
};

/** The tables as rows of plain (unescaped) cells; each renderer escapes its own way. */
function tables(r: BenchmarkReport, escape: (s: string) => string): { title: string; note?: string; head: string[]; rows: string[][] }[] {
  const names = r.targets.map((t) => t.name);
  const byName = new Map(r.overall.targets.map((t) => [t.name, t]));
  const targets = names.map((n) => byName.get(n)).filter((t): t is ComparisonTarget => t !== undefined);
  const selfHosted = r.targets.filter((t) => t.kind !== 'api');
  return [
    {
      title: 'Accuracy per benchmark (95% Wilson interval)',
      head: ['Benchmark', 'Scorer', 'Items', ...names.map(escape)],
      rows: [
        ...r.benchmarks.map((b) => [escape(b.suite), escape(b.scorer), String(b.items), ...names.map((n) => interval(b.accuracy[n]))]),
        ['All', '', String(r.benchmarks.reduce((a, b) => a + b.items, 0)), ...targets.map((t) => interval(t.accuracy))],
      ],
    },
    {
      title: 'Latency and tokens',
      note: 'Over the answered requests of every benchmark; time to first token is measured on streamed targets.',
      head: ['Target', 'Model', 'p50 ms', 'p95 ms', 'TTFT p50 ms', 'Tokens in / out', 'Tokens per request'],
      rows: targets.map((t) => [escape(t.name), escape(t.model), ms(t.latency_ms.p50), ms(t.latency_ms.p95), ms(t.ttft_ms_p50), `${count(t.tokens.input)} / ${count(t.tokens.output)}`, perRequest(t)]),
    },
    {
      title: 'Cost',
      note: 'API targets at their list prices; self-hosted targets at their GPU price over the throughput measured in this comparison, replicas running 24/7, a 30-day month.',
      head: ['Target', '$/request', '$/1M tokens', ...DAILY_VOLUMES.map((v) => `$/month @ ${count(v)} tokens/day`)],
      rows: targets.map((t) => [escape(t.name), usd(t.usd_per_request), usd(t.usd_per_1m_tokens), ...DAILY_VOLUMES.map((v) => monthly(t, v))]),
    },
    {
      title: 'Self-hosted GPU $/hour against API $/token',
      note: 'Break-even: the daily volume from which a self-hosted replica costs no more than the API for the same work.',
      head: ['Target', 'GPU $/hour', 'GPUs', 'Replica $/hour', 'Break-even'],
      rows: selfHosted.map((s) => {
        const t = byName.get(s.name);
        const hourly = s.usd_per_gpu_hour !== null && s.gpus !== null ? s.usd_per_gpu_hour * s.gpus : null;
        return [escape(s.name), usd(s.usd_per_gpu_hour), s.gpus === null ? '—' : String(s.gpus), usd(hourly), t ? breakEvenText(t, escape) : '—'];
      }),
    },
  ];
}

export function benchmarkReportMarkdown(r: BenchmarkReport): string {
  const out = [`# Comparison: ${md(r.name)}`, '', `${md(r.status)}, ${md(r.created_at)}. Targets: ${r.targets.map((t) => `${md(t.name)} (${t.kind}, ${md(t.model)})`).join(', ')}.`];
  for (const w of r.warnings) out.push('', `> Warning: ${md(w)}`);
  for (const t of tables(r, md)) {
    out.push('', `## ${t.title}`, '');
    if (t.note) out.push(t.note, '');
    if (t.rows.length === 0) {
      out.push('(none)');
      continue;
    }
    out.push(...[t.head, t.head.map(() => '---'), ...t.rows].map((row) => `| ${row.join(' | ')} |`));
  }
  return `${out.join('\n')}\n`;
}

export function benchmarkReportHtml(r: BenchmarkReport): string {
  const sections = tables(r, esc)
    .map((t) => {
      const head = `<tr>${t.head.map((h) => `<th>${h}</th>`).join('')}</tr>`;
      const rows = t.rows.map((row) => `<tr>${row.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
      return `<h2>${esc(t.title)}</h2>\n${t.note ? `<p class="note">${esc(t.note)}</p>\n` : ''}<table>\n${head}\n${rows}\n</table>`;
    })
    .join('\n');
  const warnings = r.warnings.map((w) => `<p class="warn">Warning: ${esc(w)}</p>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Comparison: ${esc(r.name)}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem}table{border-collapse:collapse;width:100%}th,td{border:1px solid #d2d6dc;padding:.3rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f4f5f7}.note{color:#52606d}.warn{color:#a8200d}</style>
</head>
<body>
<h1>Comparison: ${esc(r.name)}</h1>
<p class="note">${esc(r.status)}, ${esc(r.created_at)}</p>
${warnings}
${sections}
</body>
</html>
`;
}
