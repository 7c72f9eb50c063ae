import { useState } from 'react';
import { api, call } from '../api/client';
import { BarChart } from '../components/bar-chart';
import { Card, ErrorBox, Loading, num, Page, Table, useLoad } from '../components/ui';

export function UsagePage() {
  const [days, setDays] = useState(14);
  const { data, error } = useLoad(async () => {
    const start = Math.floor(Date.now() / 1000) - days * 86400;
    // The gateway's metering (issue 13), per model and day.
    return (await call(api.GET('/v1/usage', { params: { query: { start: String(start), group_by: 'model,day' } } }))).data;
  }, [days]);
  const perDay = new Map<string, number>();
  for (const b of data ?? []) perDay.set(b.day ?? '—', (perDay.get(b.day ?? '—') ?? 0) + b.total_tokens);
  return (
    <Page
      title="Usage"
      actions={
        <label>
          Period{' '}
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={7}>7 days</option>
            <option value={14}>14 days</option>
            <option value={30}>30 days</option>
          </select>
        </label>
      }
    >
      <ErrorBox error={error} />
      {!data && !error ? <Loading what="usage" /> : null}
      {data ? (
        <div className="grid">
          <Card title="Tokens per day" wide>
            {perDay.size ? <BarChart label="tokens per day, all models" bars={[...perDay].sort().map(([day, tokens]) => ({ label: day, value: tokens }))} /> : <p className="muted">No gateway traffic in this period.</p>}
          </Card>
          <Card title="Per model per day" wide>
            <Table
              head={['Day', 'Model', 'Requests', 'Errors', 'Tokens in', 'Tokens out', 'Total tokens']}
              rows={[...data].sort((a, b) => `${b.day}${a.model}`.localeCompare(`${a.day}${b.model}`)).map((b) => [b.day ?? '—', b.model ?? '—', num(b.requests), num(b.errors), num(b.input_tokens), num(b.output_tokens), num(b.total_tokens)])}
              empty="No gateway traffic in this period."
            />
          </Card>
        </div>
      ) : null}
    </Page>
  );
}
