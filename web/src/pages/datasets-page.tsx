import { api, call, session } from '../api/client';
import type { DatasetStats, ValidationError } from '../api/views';
import { BarChart } from '../components/bar-chart';
import { Card, ErrorBox, Facts, Loading, num, Page, short, Status, Table, useLoad, when } from '../components/ui';

export function DatasetsPage() {
  const { data, error } = useLoad(async () => (await call(api.GET('/v1/datasets', { params: { query: { limit: 100 } } }))).data, []);
  return (
    <Page title="Datasets">
      <ErrorBox error={error} />
      {!data && !error ? <Loading what="datasets" /> : null}
      {data ? (
        <Table
          head={['Dataset', 'File', 'Status', 'Format', 'Examples', 'Tokens', 'Size', 'Created']}
          rows={data.map((d) => {
            const stats: Partial<DatasetStats> = d.stats ?? {};
            return [
              <a href={`#/datasets/${encodeURIComponent(d.id)}`}>{d.id}</a>,
              d.filename,
              <Status value={d.status} />,
              d.format,
              num(stats.examples),
              num(stats.tokens?.total),
              `${(d.bytes / 1024).toFixed(1)} KiB`,
              when(d.created_at),
            ];
          })}
          empty="No datasets yet: upload one with the CLI (loraplane datasets upload) or POST /v1/datasets."
        />
      ) : null}
    </Page>
  );
}

/** The first lines of the file, fetched with the key in the header; shown as text (the content is untrusted). */
async function firstLines(id: string, n = 12): Promise<string[]> {
  const res = await fetch(`/v1/files/${encodeURIComponent(id)}/content`, { headers: { authorization: `Bearer ${session.key()}` } });
  if (!res.ok) return [];
  const text = (await res.text()).slice(0, 64 * 1024);
  return text.split('\n').filter(Boolean).slice(0, n);
}

export function DatasetPage({ id }: { id: string }) {
  const { data: d, error } = useLoad(() => call(api.GET('/v1/datasets/{dataset_id}', { params: { path: { dataset_id: id } } })), [id]);
  const lines = useLoad(() => firstLines(id), [id]);
  const stats: Partial<DatasetStats> = d?.stats ?? {};
  const errors: ValidationError[] = d?.report?.errors ?? [];
  // Stored as JSONB, whose key order is not the buckets' order: sort by bound, the open-ended '>N' bucket last.
  const bound = (k: string) => Number(k.replace(/[^0-9]/g, '')) + (k.startsWith('>') ? 0.5 : 0);
  const histogram = Object.entries(stats.tokens?.histogram ?? {}).sort(([a], [b]) => bound(a) - bound(b));
  return (
    <Page title={`Dataset ${id}`}>
      <ErrorBox error={error} />
      {!d ? (
        <Loading what="the dataset" />
      ) : (
        <div className="grid">
          <Card title="Summary">
            <Facts
              rows={[
                ['File', d.filename],
                ['Status', <Status value={d.status} />],
                ['Format', d.format],
                ['Purpose', d.purpose],
                ['Examples', num(stats.examples)],
                ['Lines', num(stats.lines)],
                ['Tokens', num(stats.tokens?.total)],
                ['sha256', <code title={d.sha256}>{short(d.sha256, 16)}</code>],
                ['Created', when(d.created_at)],
              ]}
            />
          </Card>
          <Card title="Example length (tokens)">
            {histogram.length ? (
              <BarChart label="token statistics histogram: examples per length in tokens" bars={histogram.map(([k, v]) => ({ label: `${k} tokens`, value: v }))} />
            ) : (
              <p className="muted">No token statistics for this dataset.</p>
            )}
          </Card>
          <Card title={`Validation report: ${errors.length ? `${d.report?.error_count ?? errors.length} errors` : 'no errors'}`} wide>
            <Table head={['Line', 'Field', 'Code', 'Message']} rows={errors.map((e) => [e.line ?? '—', e.path ?? '—', <code>{e.code}</code>, e.message])} empty="Every line is valid." />
          </Card>
          <Card title="First lines" wide>
            {lines.data?.length ? <pre className="lines" tabIndex={0}>{lines.data.join('\n')}</pre> : <p className="muted">Not available.</p>}
          </Card>
        </div>
      )}
    </Page>
  );
}
