import { useMemo, useState } from 'react';
import { api, call } from '../api/client';
import { costUsd, ErrorBox, Loading, Page, Status, Table, useLoad, when } from '../components/ui';

const STATUSES = ['validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];

export function JobsPage() {
  const [status, setStatus] = useState('');
  const [model, setModel] = useState('');
  const [text, setText] = useState('');
  const { data, error } = useLoad(async () => (await call(api.GET('/v1/fine_tuning/jobs', { params: { query: { limit: 100 } } }))).data, []);
  const models = useMemo(() => [...new Set((data ?? []).map((j) => j.model))].sort(), [data]);
  const shown = (data ?? []).filter(
    (j) => (!status || j.status === status) && (!model || j.model === model) && (!text || `${j.id} ${j.user_provided_suffix ?? ''} ${j.fine_tuned_model ?? ''}`.toLowerCase().includes(text.toLowerCase())),
  );
  return (
    <Page title="Jobs" actions={<a className="button" href="#/new-job">New job</a>}>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Model
          <select value={model} onChange={(e) => setModel(e.target.value)}>
            <option value="">any</option>
            {models.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input type="search" value={text} placeholder="id, suffix or model name" onChange={(e) => setText(e.target.value)} />
        </label>
      </form>
      <ErrorBox error={error} />
      {!data && !error ? <Loading what="jobs" /> : null}
      {data ? (
        <Table
          caption={`${shown.length} of ${data.length} jobs`}
          head={['Job', 'Status', 'Model', 'Suffix', 'Created', 'Estimated cost', 'Cost']}
          rows={shown.map((j) => [
            <a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a>,
            <Status value={j.status} />,
            j.model,
            j.user_provided_suffix ?? '—',
            when(j.created_at),
            costUsd(j.estimated_cost),
            costUsd(j.cost),
          ])}
          empty="No jobs yet: start one from New job."
        />
      ) : null}
    </Page>
  );
}
