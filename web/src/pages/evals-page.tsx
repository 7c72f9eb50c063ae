import { api, call } from '../api/client';
import type { Comparison } from '../api/views';
import { BarChart } from '../components/bar-chart';
import { Card, ErrorBox, Loading, num, Page, pct, Status, Table, usd, useLoad, when } from '../components/ui';
import { breakEven, fmtCount, ms } from './eval-format';

export function EvalsPage() {
  const { data, error } = useLoad(async () => (await call(api.GET('/v1/evals/runs', { params: { query: { limit: 100 } } }))).data, []);
  const comparisons = useLoad(async () => (await call(api.GET('/v1/evals/comparisons', { params: { query: { limit: 100 } } }))).data, []);
  return (
    <Page title="Evals">
      <h2>Comparisons</h2>
      <ErrorBox error={comparisons.error} />
      {!comparisons.data && !comparisons.error ? <Loading what="comparisons" /> : null}
      {comparisons.data ? (
        <Table
          head={['Comparison', 'Benchmarks', 'Status', 'Progress', 'Created']}
          rows={comparisons.data.map((c) => [
            <a href={`#/evals/comparisons/${encodeURIComponent(c.id)}`}>{c.name}</a>,
            c.runs.map((r) => r.suite.name).join(', '),
            <Status value={c.status} />,
            c.progress ? `${c.progress.done}/${c.progress.total}` : '—',
            when(c.created_at),
          ])}
          empty="No comparisons yet."
        />
      ) : null}
      <h2>Runs</h2>
      <ErrorBox error={error} />
      {!data && !error ? <Loading what="eval runs" /> : null}
      {data ? (
        <Table
          head={['Run', 'Suite', 'Status', 'Targets', 'Created', 'Finished']}
          rows={data.map((r) => [
            <a href={`#/evals/${encodeURIComponent(r.id)}`}>{r.id}</a>,
            typeof r.suite === 'object' ? (r.suite?.name ?? '—') : (r.suite ?? '—'),
            <Status value={r.status} />,
            String((r.target_ids as unknown[] | undefined)?.length ?? '—'),
            when(r.created_at),
            when(r.finished_at as number | undefined),
          ])}
          empty="No eval runs yet."
        />
      ) : null}
    </Page>
  );
}

/** A run's comparison report (GET /v1/evals/runs/{id}/report?format=json), drawn and tabled. */
export function EvalRunPage({ id }: { id: string }) {
  const run = useLoad(() => call(api.GET('/v1/evals/runs/{run_id}', { params: { path: { run_id: id } } })), [id]);
  const report = useLoad(() => call(api.GET('/v1/evals/runs/{run_id}/report', { params: { path: { run_id: id }, query: { format: 'json' } }, parseAs: 'json' })), [id]);
  const c = report.data;
  return (
    <Page title={`Eval run ${id}`}>
      {run.data ? (
        <p>
          <Status value={run.data.status} /> suite {typeof run.data.suite === 'object' ? run.data.suite?.name : ''} · created {when(run.data.created_at)}
        </p>
      ) : null}
      <ErrorBox error={run.error ?? report.error} />
      {!c && !report.error ? <Loading what="the report" /> : null}
      {c ? <Report c={c} /> : null}
    </Page>
  );
}

function Report({ c }: { c: Comparison }) {
  const volumes = c.targets[0]?.monthly.map((m) => m.tokens_per_day) ?? [];
  return (
    <div className="grid">
      <Card title={`Accuracy on ${c.suite.name} (${c.suite.items} items, ${c.suite.scorer})`} wide>
        <BarChart
          label={`accuracy per target with 95% intervals on ${c.suite.name}`}
          bars={c.targets.map((t) => ({ label: t.name, value: (t.accuracy.rate ?? 0) * 100, low: t.accuracy.low * 100, high: t.accuracy.high * 100 }))}
          max={100}
          format={(v) => v.toFixed(1)}
          unit="%"
        />
      </Card>
      <Card title="Latency">
        <BarChart label="latency p50 per target in milliseconds" bars={c.targets.map((t) => ({ label: t.name, value: t.latency_ms.p50 ?? 0 }))} format={(v) => ms(v)} unit=" ms" />
      </Card>
      <Card title="Cost per 1M tokens">
        <BarChart label="cost per 1M tokens per target in dollars" bars={c.targets.map((t) => ({ label: t.name, value: t.usd_per_1m_tokens ?? 0 }))} format={(v) => usd(v)} />
      </Card>
      <Card title="Targets" wide>
        <Table
          head={['Target', 'Kind', 'Model', 'Accuracy', '95% interval', 'p50 ms', 'p95 ms', 'Tokens in / out', '$ / 1M tokens', ...volumes.map((v) => `$ / month @ ${fmtCount(v)}/day`), 'Break-even']}
          rows={c.targets.map((t) => [
            t.name,
            t.kind,
            t.model,
            `${pct(t.accuracy.rate)} (${t.accuracy.k}/${t.accuracy.n})`,
            `${pct(t.accuracy.low)} – ${pct(t.accuracy.high)}`,
            ms(t.latency_ms.p50),
            ms(t.latency_ms.p95),
            `${num(t.tokens.input)} / ${num(t.tokens.output)}`,
            usd(t.usd_per_1m_tokens),
            ...t.monthly.map((m) => usd(m.usd_per_month)),
            breakEven(t),
          ])}
        />
      </Card>
      {c.baseline ? <WinsLosses c={c} /> : null}
    </div>
  );
}

/** Items one target got right and the baseline wrong (wins), and the reverse (losses). */
function WinsLosses({ c }: { c: Comparison }) {
  const base = c.targets.find((t) => t.name === c.baseline);
  if (!base) return null;
  const ok = new Map(base.results.map((r) => [r.index, r.correct]));
  const prompt = new Map(c.items.map((i) => [i.index, i.prompt]));
  return (
    <>
      {c.targets
        .filter((t) => t !== base)
        .map((t) => {
          const wins = t.results.filter((r) => r.correct && ok.get(r.index) === false);
          const losses = t.results.filter((r) => !r.correct && ok.get(r.index) === true);
          return (
            <Card key={t.name} title={`${t.name} vs ${base.name}: ${wins.length} wins, ${losses.length} losses`} wide>
              <Table
                head={['Item', 'Outcome', 'Prompt']}
                rows={[...wins.map((r) => [r.index, 'win', prompt.get(r.index) ?? '']), ...losses.map((r) => [r.index, 'loss', prompt.get(r.index) ?? ''])].slice(0, 100)}
                empty="Same answers on every item."
              />
            </Card>
          );
        })}
    </>
  );
}
