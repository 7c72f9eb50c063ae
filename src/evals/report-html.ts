/**
 * The comparison as one self-contained HTML page: inline CSS and inline SVG charts, no scripts, fonts or other
 * assets, so it can be attached to a CI run, mailed or opened offline. Every string from the comparison goes through
 * `esc` (names, models, prompts all come from users), and a Content-Security-Policy that allows no scripts at all
 * backs that up should a string ever slip through.
 */
import { breakEvenText, Comparison, ComparisonTarget, count, itemDiffs, MAX_DIFF_ITEMS, ms, percent, preview, summaryColumns, usd } from './report';

/** Okabe-Ito: distinguishable with the common colour-vision deficiencies. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#000000', '#F0E442'];
const color = (i: number) => PALETTE[i % PALETTE.length];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1f2933}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d2d6dc;padding:.3rem .5rem;text-align:right;vertical-align:top}
th{background:#f4f5f7}td:first-child,th:first-child,td.l{text-align:left}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:-.05em}
.note{color:#52606d}svg{display:block;margin:.5rem 0 1.5rem;max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#1f2933}
.win{color:#006e4f}.loss{color:#a8200d}`;

export function reportHtml(c: Comparison): string {
  const title = `Eval: ${c.suite.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="note">${c.suite.items} items, scorer <code>${esc(c.suite.scorer)}</code>, ${esc(c.created_at)}. Accuracy intervals are 95% Wilson; latency percentiles are nearest-rank; monthly costs assume a 30-day month and, for self-hosted targets, replicas running 24/7.</p>
${summaryTable(c)}
<h2>Accuracy</h2>
${accuracyChart(c.targets)}
<h2>Latency</h2>
${latencyChart(c.targets)}
<h2>Monthly cost by daily volume</h2>
${costChart(c.targets)}
${diffSections(c)}
</body>
</html>
`;
}

function summaryTable(c: Comparison): string {
  const columns = summaryColumns(c);
  const head = ['Target', 'Kind', ...columns.head, 'Break-even'];
  const rows = c.targets.map((t, i) => {
    const cells = columns.cells(t).map((s) => `<td>${esc(s)}</td>`);
    const name = `<td><span class="swatch" style="background:${color(i)}"></span>${esc(t.name)}<br><span class="note">${esc(t.model)}</span></td>`;
    return `<tr>${name}<td class="l">${esc(t.kind)}</td>${cells.join('')}<td class="l">${breakEvenText(t, esc)}</td></tr>`;
  });
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
}

const W = 760;
const LABEL_W = 190;
const fx = (n: number) => n.toFixed(1);
const short = (s: string, n = 26) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** An SVG with an accessible name; its children are already escaped. */
const svg = (h: number, label: string, body: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(label)}"><title>${esc(label)}</title>${body}</svg>`;

/** Horizontal bars of the accuracy, with the Wilson interval as a whisker. */
function accuracyChart(targets: ComparisonTarget[]): string {
  const row = 30;
  const top = 10;
  const x0 = LABEL_W;
  const x1 = W - 70;
  const x = (p: number) => x0 + p * (x1 - x0);
  const h = top + targets.length * row + 24;
  const parts: string[] = [];
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${fx(x(p))}" x2="${fx(x(p))}" y1="${top}" y2="${h - 20}" stroke="#e4e7eb"/>`, `<text x="${fx(x(p))}" y="${h - 6}" text-anchor="middle">${p * 100}%</text>`);
  }
  targets.forEach((t, i) => {
    const y = top + i * row;
    const mid = y + row / 2;
    const a = t.accuracy;
    parts.push(`<text x="${x0 - 8}" y="${fx(mid + 4)}" text-anchor="end">${esc(short(t.name))}<title>${esc(t.name)}</title></text>`);
    if (a.rate !== null) parts.push(`<rect x="${x0}" y="${y + 6}" width="${fx(x(a.rate) - x0)}" height="${row - 12}" fill="${color(i)}" opacity="0.85"/>`);
    parts.push(
      `<line x1="${fx(x(a.low))}" x2="${fx(x(a.high))}" y1="${fx(mid)}" y2="${fx(mid)}" stroke="#1f2933" stroke-width="1.5"/>`,
      ...[a.low, a.high].map((v) => `<line x1="${fx(x(v))}" x2="${fx(x(v))}" y1="${fx(mid - 6)}" y2="${fx(mid + 6)}" stroke="#1f2933" stroke-width="1.5"/>`),
      `<text x="${x1 + 8}" y="${fx(mid + 4)}">${esc(percent(a.rate))}</text>`,
    );
  });
  return svg(h, 'Accuracy per target with 95% Wilson intervals', parts.join(''));
}

/** p50/p95/p99 side by side per target; the shade says which percentile. */
function latencyChart(targets: ComparisonTarget[]): string {
  const h = 260;
  const top = 28;
  const bottom = h - 40;
  const x0 = 60;
  const keys = ['p50', 'p95', 'p99'] as const;
  const shades = [1, 0.6, 0.3];
  const max = niceMax(Math.max(0, ...targets.flatMap((t) => keys.map((k) => t.latency_ms[k] ?? 0))));
  const y = (v: number) => bottom - (v / max) * (bottom - top);
  const group = (W - x0 - 10) / Math.max(1, targets.length);
  const bar = Math.min(28, (group - 16) / 3);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<line x1="${x0}" x2="${W - 10}" y1="${fx(y(v))}" y2="${fx(y(v))}" stroke="#e4e7eb"/>`, `<text x="${x0 - 6}" y="${fx(y(v) + 4)}" text-anchor="end">${esc(axisNumber(v))}</text>`);
  }
  keys.forEach((k, j) => parts.push(`<rect x="${x0 + j * 90}" y="6" width="12" height="12" fill="#52606d" opacity="${shades[j]}"/><text x="${x0 + j * 90 + 16}" y="16">${k} ms</text>`));
  targets.forEach((t, i) => {
    const gx = x0 + i * group + (group - 3 * bar) / 2;
    keys.forEach((k, j) => {
      const v = t.latency_ms[k];
      if (v === null) return;
      parts.push(`<rect x="${fx(gx + j * bar)}" y="${fx(y(v))}" width="${fx(bar - 2)}" height="${fx(bottom - y(v))}" fill="${color(i)}" opacity="${shades[j]}"><title>${esc(`${t.name} ${k}: ${ms(v)} ms`)}</title></rect>`);
    });
    parts.push(`<text x="${fx(gx + 1.5 * bar)}" y="${bottom + 16}" text-anchor="middle">${esc(short(t.name, 18))}<title>${esc(t.name)}</title></text>`);
  });
  return svg(h, 'Latency p50, p95 and p99 per target, milliseconds', parts.join(''));
}

/** USD per month against tokens per day, x on a log scale; points are the projected volumes, joined by lines. */
function costChart(targets: ComparisonTarget[]): string {
  const series = targets
    .map((t, i) => ({ t, i, points: t.monthly.filter((m) => m.usd_per_month !== null && m.tokens_per_day > 0).sort((a, b) => a.tokens_per_day - b.tokens_per_day) }))
    .filter((s) => s.points.length > 0);
  const h = 300;
  if (series.length === 0) return svg(60, 'Monthly cost: no projections', '<text x="10" y="30">No cost projections in this comparison.</text>');
  const top = 14;
  const bottom = h - 60;
  const x0 = 70;
  const x1 = W - 20;
  const volumes = series.flatMap((s) => s.points.map((p) => p.tokens_per_day));
  let lo = Math.floor(Math.log10(Math.min(...volumes)));
  let hi = Math.ceil(Math.log10(Math.max(...volumes)));
  if (hi === lo) {
    lo -= 1;
    hi += 1;
  }
  const max = niceMax(Math.max(...series.flatMap((s) => s.points.map((p) => p.usd_per_month as number))));
  const x = (v: number) => x0 + ((Math.log10(v) - lo) / (hi - lo)) * (x1 - x0);
  const y = (v: number) => bottom - (v / max) * (bottom - top);
  const parts: string[] = [];
  for (let d = lo; d <= hi; d++) {
    parts.push(`<line x1="${fx(x(10 ** d))}" x2="${fx(x(10 ** d))}" y1="${top}" y2="${bottom}" stroke="#e4e7eb"/>`, `<text x="${fx(x(10 ** d))}" y="${bottom + 16}" text-anchor="middle">${count(10 ** d)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<line x1="${x0}" x2="${x1}" y1="${fx(y(v))}" y2="${fx(y(v))}" stroke="#e4e7eb"/>`, `<text x="${x0 - 6}" y="${fx(y(v) + 4)}" text-anchor="end">${esc(usd(v))}</text>`);
  }
  parts.push(`<text x="${(x0 + x1) / 2}" y="${bottom + 32}" text-anchor="middle">tokens per day (log scale)</text>`);
  for (const s of series) {
    const pts = s.points.map((p) => `${fx(x(p.tokens_per_day))},${fx(y(p.usd_per_month as number))}`);
    parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color(s.i)}" stroke-width="2"${s.t.kind === 'api' ? '' : ' stroke-dasharray="6 3"'}/>`);
    for (const p of s.points) {
      parts.push(`<circle cx="${fx(x(p.tokens_per_day))}" cy="${fx(y(p.usd_per_month as number))}" r="3.5" fill="${color(s.i)}"><title>${esc(`${s.t.name}: ${usd(p.usd_per_month)}/month at ${count(p.tokens_per_day)} tokens/day${p.replicas ? `, ${p.replicas} replica(s)` : ''}`)}</title></circle>`);
    }
  }
  series.forEach((s, k) => {
    const lx = x0 + (k % 4) * 170;
    const ly = bottom + 46 + Math.floor(k / 4) * 14;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${color(s.i)}"/><text x="${lx + 14}" y="${ly}">${esc(short(`${s.t.name} (${s.t.kind})`, 24))}</text>`);
  });
  const legendRows = Math.ceil(series.length / 4);
  return svg(h + (legendRows - 1) * 14, 'Monthly cost in USD against daily token volume, log scale; dashed lines are self-hosted', parts.join(''));
}

function diffSections(c: Comparison): string {
  return itemDiffs(c)
    .map((d) => {
      const list = (items: { index: number; prompt: string }[], cls: string) =>
        items.length === 0
          ? '<p class="note">None.</p>'
          : `<table><thead><tr><th>#</th><th>Prompt</th></tr></thead><tbody>${items
              .slice(0, MAX_DIFF_ITEMS)
              .map((i) => `<tr><td class="${cls}">${i.index}</td><td class="l">${esc(preview(i.prompt, 160))}</td></tr>`)
              .join('')}</tbody></table>${items.length > MAX_DIFF_ITEMS ? `<p class="note">… and ${items.length - MAX_DIFF_ITEMS} more</p>` : ''}`;
      return [
        `<h2>${esc(d.target)} vs ${esc(d.baseline)}: ${d.wins.length} wins, ${d.losses.length} losses</h2>`,
        `<h3 class="win">Wins: ${esc(d.target)} right, ${esc(d.baseline)} wrong</h3>`,
        list(d.wins, 'win'),
        `<h3 class="loss">Losses: ${esc(d.target)} wrong, ${esc(d.baseline)} right</h3>`,
        list(d.losses, 'loss'),
      ].join('\n');
    })
    .join('\n');
}

/** Axis labels: whole numbers where the step allows ("0", "1,250"), else one decimal. */
const axisNumber = (v: number) => (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(1));

/** The smallest 1, 2 or 5 x 10^k at or above v (an axis maximum); 1 for v <= 0. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
