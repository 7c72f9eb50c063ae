import { api, call } from '../api/client';
import type { BenchmarkReport, ComparisonTarget } from '../api/views';
import { BarChart } from '../components/bar-chart';
import { Card, ErrorBox, Loading, num, Page, Status, Table, usd, useLoad, when } from '../components/ui';
import { breakEven, fmtCount, interval, ms } from './eval-format';

/**
 * A comparison across benchmarks (GET /v1/evals/comparisons/{id} and its JSON report): accuracy with 95% intervals
 * per benchmark and target, latency, cost per 1M tokens and per month, break-even, and per-item wins and losses
 * against the baseline. Every chart also has its numbers as a table; every name is user text, rendered as text.
 */
export function ComparisonPage({ id }: { id: string }) {
  const path = { comparison_id: id };
  const comparison = useLoad(() => call(api.GET('/v1/evals/comparisons/{comparison_id}', { params: { path } })), [id]);
  const report = useLoad(
    () => call(api.GET('/v1/evals/comparisons/{comparison_id}/report', { params: { path, query: { format: 'json' } }, parseAs: 'json' })),
    [id],
  );
  const c = comparison.data;
  const r = report.data;
  return (
    <Page title={`Comparison ${c?.name ?? id}`}>
      {c ? (
        <p>
          <Status value={c.status} /> {c.progress ? `${c.progress.done}/${c.progress.total} answers` : ''} · created {when(c.created_at)} · runs{' '}
          {c.runs.map((run, i) => (
            <span key={run.id}>
              {i ? ', ' : ''}
              <a href={`#/evals/${encodeURIComponent(run.id)}`}>{run.suite.name}</a>
            </span>
          ))}
        </p>
      ) : null}
      <ErrorBox error={comparison.error ?? report.error} />
      {!r && !report.error ? <Loading what="the report" /> : null}
      {r ? <ComparisonReport r={r} /> : null}
    </Page>
  );
}

function ComparisonReport({ r }: { r: BenchmarkReport }) {
  const byName = new Map(r.overall.targets.map((t) => [t.name, t]));
  const targets = r.targets.map((t) => byName.get(t.name)).filter((t): t is ComparisonTarget => t !== undefined);
  return (
    <div className="grid">
      {r.warnings.map((w) => (
        <p key={w} className="error" role="note">
          {w}
        </p>
      ))}
      <Accuracy r={r} targets={targets} />
      <Latency targets={targets} />
      <Cost r={r} targets={targets} />
      {r.baseline ? <WinsLosses r={r} targets={targets} /> : null}
    </div>
  );
}

function Accuracy({ r, targets }: { r: BenchmarkReport; targets: ComparisonTarget[] }) {
  const names = r.targets.map((t) => t.name);
  return (
    <Card title="Accuracy per benchmark (95% Wilson intervals)" wide>
      {r.benchmarks.map((b) => (
        <section key={b.suite}>
          <h3>
            {b.suite} ({b.items} items, {b.scorer})
          </h3>
          <BarChart
            label={`accuracy per target with 95% intervals on ${b.suite}`}
            bars={names.map((n) => ({ label: n, value: (b.accuracy[n]?.rate ?? 0) * 100, low: (b.accuracy[n]?.low ?? 0) * 100, high: (b.accuracy[n]?.high ?? 0) * 100 }))}
            max={100}
            format={(v) => v.toFixed(1)}
            unit="%"
          />
        </section>
      ))}
      <Table
        caption="Accuracy per benchmark and target"
        head={['Benchmark', 'Scorer', 'Items', ...names]}
        rows={[
          ...r.benchmarks.map((b) => [b.suite, b.scorer, b.items, ...names.map((n) => interval(b.accuracy[n]))]),
          ['All', '', r.benchmarks.reduce((a, b) => a + b.items, 0), ...targets.map((t) => interval(t.accuracy))],
        ]}
      />
    </Card>
  );
}

function Latency({ targets }: { targets: ComparisonTarget[] }) {
  return (
    <Card title="Latency" wide>
      <BarChart
        label="latency p50 and p95 per target in milliseconds"
        bars={targets.flatMap((t) => [
          { label: `${t.name} p50`, value: t.latency_ms.p50 ?? 0 },
          { label: `${t.name} p95`, value: t.latency_ms.p95 ?? 0 },
        ])}
        format={(v) => ms(v)}
        unit=" ms"
      />
      <Table
        caption="Latency and tokens per target"
        head={['Target', 'Model', 'p50 ms', 'p95 ms', 'TTFT p50 ms', 'Tokens in / out']}
        rows={targets.map((t) => [t.name, t.model, ms(t.latency_ms.p50), ms(t.latency_ms.p95), ms(t.ttft_ms_p50), `${num(t.tokens.input)} / ${num(t.tokens.output)}`])}
      />
    </Card>
  );
}

function Cost({ r, targets }: { r: BenchmarkReport; targets: ComparisonTarget[] }) {
  const volumes = targets[0]?.monthly.map((m) => m.tokens_per_day) ?? [];
  const perMonth = (t: ComparisonTarget, v: number) => t.monthly.find((m) => m.tokens_per_day === v)?.usd_per_month ?? null;
  const selfHosted = r.targets.filter((t) => t.kind !== 'api');
  return (
    <Card title="Cost" wide>
      <h3>Per 1M tokens</h3>
      <BarChart label="cost per 1M tokens per target in dollars" bars={targets.map((t) => ({ label: t.name, value: t.usd_per_1m_tokens ?? 0 }))} format={(v) => usd(v)} />
      {volumes.map((v) => (
        <section key={v}>
          <h3>Per month at {fmtCount(v)} tokens a day</h3>
          <BarChart label={`cost per month at ${fmtCount(v)} tokens a day per target in dollars`} bars={targets.map((t) => ({ label: t.name, value: perMonth(t, v) ?? 0 }))} format={(x) => usd(x)} />
        </section>
      ))}
      <Table
        caption="Cost per target"
        head={['Target', '$ / request', '$ / 1M tokens', ...volumes.map((v) => `$ / month @ ${fmtCount(v)} tokens/day`), 'Break-even']}
        rows={targets.map((t) => [t.name, usd(t.usd_per_request), usd(t.usd_per_1m_tokens), ...volumes.map((v) => usd(perMonth(t, v))), breakEven(t)])}
      />
      {selfHosted.length ? (
        <Table
          caption="Self-hosted GPU price against API price per token"
          head={['Target', 'GPU $ / hour', 'GPUs', 'Replica $ / hour', 'Break-even']}
          rows={selfHosted.map((s) => {
            const t = targets.find((x) => x.name === s.name);
            const hourly = s.usd_per_gpu_hour !== null && s.gpus !== null ? s.usd_per_gpu_hour * s.gpus : null;
            return [s.name, usd(s.usd_per_gpu_hour), s.gpus ?? '—', usd(hourly), t ? breakEven(t) : '—'];
          })}
        />
      ) : null}
    </Card>
  );
}

/**
 * Items a target got right and the baseline wrong (wins), and the reverse (losses). The overall results number
 * items across benchmarks one after another, so an index maps back to its benchmark by the benchmarks' sizes.
 */
function WinsLosses({ r, targets }: { r: BenchmarkReport; targets: ComparisonTarget[] }) {
  const base = targets.find((t) => t.name === r.baseline);
  if (!base) return null;
  const ok = new Map(base.results.map((x) => [x.index, x.correct]));
  const where = (index: number) => {
    let i = index;
    for (const b of r.benchmarks) {
      if (i < b.items) return `${b.suite} #${i}`;
      i -= b.items;
    }
    return `#${index}`;
  };
  return (
    <>
      {targets
        .filter((t) => t !== base)
        .map((t) => {
          const wins = t.results.filter((x) => x.correct && ok.get(x.index) === false);
          const losses = t.results.filter((x) => !x.correct && ok.get(x.index) === true);
          return (
            <Card key={t.name} title={`${t.name} vs ${base.name}: ${wins.length} wins, ${losses.length} losses`} wide>
              <Table
                head={['Item', 'Outcome']}
                rows={[...wins.map((x) => [where(x.index), 'win']), ...losses.map((x) => [where(x.index), 'loss'])].slice(0, 200)}
                empty="Same outcome on every item."
              />
            </Card>
          );
        })}
    </>
  );
}
