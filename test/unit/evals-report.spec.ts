import { monthlyProjection } from '../../src/evals/cost-model';
import { Comparison, ComparisonTarget, count, itemDiffs, md, reportJson, reportMarkdown, usd } from '../../src/evals/report';
import { esc, niceMax, reportHtml } from '../../src/evals/report-html';
import { latencySummary, wilsonInterval } from '../../src/evals/stats';

const XSS = '<script>alert(1)</script>';

/** 5 items; correct flags per target. */
function target(name: string, kind: ComparisonTarget['kind'], correct: boolean[], extra: Partial<ComparisonTarget> = {}): ComparisonTarget {
  const k = correct.filter(Boolean).length;
  return {
    name,
    kind,
    model: kind === 'api' ? 'o3-mini' : 'gpt-oss-20b',
    accuracy: wilsonInterval(k, correct.length),
    latency_ms: latencySummary([120, 180, 240, 900, 1500]),
    ttft_ms_p50: kind === 'api' ? null : 85,
    tokens: { input: 1200, output: 3400 },
    usd_per_request: kind === 'api' ? 0.0031 : 0.0009,
    usd_per_1m_tokens: kind === 'api' ? 3.025 : 0.556,
    monthly: kind === 'api' ? monthlyProjection({ kind: 'api', usd_per_1m_tokens: 3.025 }) : monthlyProjection({ kind: 'self_hosted', usd_per_hour: 2, tokens_per_second: 1000 }),
    break_even: kind === 'api' ? [] : [{ api_target: 'o3-mini', tokens_per_day: 16e6, self_hosted_cheaper_from_tokens_per_day: 16e6 }],
    results: correct.map((c, index) => ({ index, correct: c, error: null })),
    ...extra,
  };
}

function comparison(): Comparison {
  return {
    suite: { name: 'tickets v2', scorer: 'exact_match', items: 5 },
    created_at: '2025-07-01T12:00:00Z',
    baseline: 'base',
    items: [
      { index: 0, prompt: 'My parcel never arrived.' },
      { index: 1, prompt: `Ignore this ${XSS} and | pipes` },
      { index: 2, prompt: `A very long prompt ${'x'.repeat(200)}` },
      { index: 3, prompt: 'I was charged\ntwice.' },
      { index: 4, prompt: 'Reset my password' },
    ],
    targets: [
      target('o3-mini', 'api', [true, true, false, true, true]),
      target('base', 'base', [true, false, false, true, false]),
      target(`tickets ${XSS}`, 'adapter', [true, true, true, false, true]),
    ],
  };
}

describe('itemDiffs', () => {
  it('wins: the target right and the baseline wrong; losses: the reverse', () => {
    const [api, adapter] = itemDiffs(comparison());
    expect(adapter).toMatchObject({ target: `tickets ${XSS}`, baseline: 'base' });
    expect(adapter.wins.map((i) => i.index)).toEqual([1, 2, 4]);
    expect(adapter.losses.map((i) => i.index)).toEqual([3]);
    expect(api.wins.map((i) => i.index)).toEqual([1, 4]);
    expect(api.losses).toEqual([]);
  });

  it('is empty without a baseline', () => {
    expect(itemDiffs({ ...comparison(), baseline: null })).toEqual([]);
  });
});

describe('reportJson', () => {
  it('is the comparison with keys in a stable order, whatever order they were set in', () => {
    const a = comparison();
    const b: Comparison = { targets: a.targets, items: a.items, baseline: a.baseline, created_at: a.created_at, suite: { items: 5, scorer: 'exact_match', name: 'tickets v2' } };
    expect(reportJson(b)).toBe(reportJson(a));
    expect(JSON.parse(reportJson(a))).toEqual(a);
    expect(reportJson(a).indexOf('"baseline"')).toBeLessThan(reportJson(a).indexOf('"created_at"'));
  });
});

describe('reportMarkdown', () => {
  const out = reportMarkdown(comparison());

  it('has a side-by-side table with accuracy, interval, latency, tokens and cost', () => {
    const lines = out.split('\n');
    expect(lines).toContain(
      '| Target | Kind | Accuracy | 95% CI | p50 ms | p95 ms | p99 ms | TTFT p50 ms | Tokens in / out | $/request | $/1M tokens | $/month @ 1M/day | $/month @ 10M/day | Break-even |',
    );
    // 4 of 5: Wilson [0.3755, 0.9638]; nearest-rank p50/p95/p99 of [120, 180, 240, 900, 1500] = 240, 1500, 1500.
    expect(lines).toContain('| o3-mini (o3-mini) | api | 80.0% (4/5) | 37.6% – 96.4% | 240 | 1,500 | 1,500 | — | 1.2k / 3.4k | $0.0031 | $3.02 | $90.75 | $908 | — |');
    expect(lines).toContain('| base (gpt-oss-20b) | base | 40.0% (2/5) | 11.8% – 76.9% | 240 | 1,500 | 1,500 | 85.0 | 1.2k / 3.4k | $0.0009 | $0.556 | $1,440 | $1,440 | vs o3-mini: 16M/day |');
  });

  it('lists wins and losses with the item index and a one-line, truncated prompt', () => {
    expect(out).toContain('## tickets &lt;script&gt;alert(1)&lt;/script&gt; vs base: 3 wins, 1 losses');
    expect(out).toContain('- #1: Ignore this &lt;script&gt;alert(1)&lt;/script&gt; and \\| pipes');
    expect(out).toContain(`- #2: A very long prompt ${'x'.repeat(80)}…`);
    expect(out).toContain('### Losses (tickets &lt;script&gt;alert(1)&lt;/script&gt; wrong, base right)\n\n- #3: I was charged twice.');
  });

  it('escapes every user string', () => {
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('</script>');
    expect(md('a|b *c* [d](e) `f`\nnext')).toBe('a\\|b \\*c\\* \\[d\\](e) \\`f\\` next');
  });
});

describe('reportHtml', () => {
  const html = reportHtml(comparison());

  it('escapes a <script> in a prompt and in a target name', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('tickets &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('Ignore this &lt;script&gt;alert(1)&lt;/script&gt; and | pipes');
    expect(esc(`"'<>&`)).toBe('&quot;&#39;&lt;&gt;&amp;');
  });

  it('escapes names inside the SVG charts and attributes too', () => {
    const name = `x" onload="alert(1)`;
    const page = reportHtml({ ...comparison(), targets: [target(name, 'adapter', [true])] });
    expect(page).not.toContain('onload="');
    expect(page).toContain('x&quot; onload=&quot;alert(1)');
  });

  it('is self-contained: inline CSS and SVG, no external assets, no scripts allowed', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).not.toMatch(/\s(src|href)=|url\(|@import|<link/i);
    expect(html.match(/https?:\/\/[^"]*/g)).toEqual(['http://www.w3.org/2000/svg', 'http://www.w3.org/2000/svg', 'http://www.w3.org/2000/svg']);
  });

  it('draws accuracy bars to scale with interval whiskers', () => {
    // Plot from x=190 (0%) to x=690 (100%): 80% is 400 wide; the whisker runs from 37.55% to 96.38%.
    expect(html).toContain('<rect x="190" y="16" width="400.0" height="18" fill="#0072B2" opacity="0.85"/>');
    const low = wilsonInterval(4, 5).low;
    expect(html).toContain(`<line x1="${(190 + low * 500).toFixed(1)}" x2="${(190 + wilsonInterval(4, 5).high * 500).toFixed(1)}" y1="25.0" y2="25.0"`);
  });

  it('draws p50/p95/p99 latency bars on a nice axis', () => {
    expect(niceMax(1500)).toBe(2000);
    expect(niceMax(0)).toBe(1);
    expect(niceMax(3)).toBe(5);
    expect(html).toContain('<title>o3-mini p95: 1,500 ms</title>');
  });

  it('draws cost against daily volume on a log x axis', () => {
    // Volumes 1M and 10M: one decade, x from 70 to 740.
    expect(html).toContain('tokens per day (log scale)');
    expect(html).toMatch(/<polyline points="70\.0,[\d.]+ 740\.0,[\d.]+" fill="none" stroke="#0072B2" stroke-width="2"\/>/);
    expect(html).toContain('stroke-dasharray="6 3"'); // self-hosted lines are dashed
    expect(html).toContain('<title>base: $1,440/month at 1M tokens/day, 1 replica(s)</title>');
  });

  it('says so when there is nothing to plot', () => {
    const page = reportHtml({ ...comparison(), targets: comparison().targets.map((t) => ({ ...t, monthly: [] })) });
    expect(page).toContain('No cost projections in this comparison.');
  });
});

describe('formatting', () => {
  it.each([
    [null, '—'],
    [0, '$0'],
    [0.000123, '$0.000123'],
    [3.025, '$3.02'],
    [1440, '$1,440'],
  ])('usd(%p) = %s', (x, s) => expect(usd(x)).toBe(s));

  it.each([
    [950, '950'],
    [1500, '1.5k'],
    [48e6, '48M'],
    [86.4e6, '86.4M'],
    [2e9, '2B'],
  ])('count(%p) = %s', (n, s) => expect(count(n)).toBe(s));
});
