import { useEffect, useMemo, useState } from 'react';
import { api, call } from '../api/client';
import type { Job } from '../api/views';
import { TimeChart } from '../components/time-chart';
import { Card, costUsd, ErrorBox, Facts, Loading, num, Page, Status, Table, useLoad, when } from '../components/ui';
import { useJobStream } from './job-stream';

export function JobPage({ id }: { id: string }) {
  const job = useLoad(() => call(api.GET('/v1/fine_tuning/jobs/{fine_tuning_job_id}', { params: { path: { fine_tuning_job_id: id } } })), [id]);
  const checkpoints = useLoad(
    async () => (await call(api.GET('/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints', { params: { path: { fine_tuning_job_id: id }, query: { limit: 100 } } }))).data,
    [id],
  );
  const reloadAll = () => (job.reload(), checkpoints.reload());
  const { curve, events, error } = useJobStream(id, reloadAll);
  const j = job.data;
  // Stable series objects: the charts redraw when the curve grows, not on every render of the page.
  const loss = useMemo(
    () => [
      { label: 'training loss', values: curve.train, color: '#2563eb' },
      { label: 'validation loss', values: curve.valid, color: '#dc2626' },
    ],
    [curve],
  );
  const lr = useMemo(() => [{ label: 'learning rate', values: curve.lr, color: '#7c3aed' }], [curve]);
  const tps = useMemo(() => [{ label: 'tokens/s', values: curve.tps, color: '#059669' }], [curve]);
  // The stream says when the job ends; a status change before that (queued -> running) shows up as an event.
  useEffect(() => {
    if (events.length) job.reload();
  }, [events.length]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <Page title={`Job ${id}`} actions={j ? <JobActions job={j} onChange={reloadAll} /> : null}>
      <ErrorBox error={job.error ?? error} />
      {!j ? (
        <Loading what="the job" />
      ) : (
        <div className="grid">
          <Card title="Summary">
            <Facts
              rows={[
                ['Status', <Status value={j.status} />],
                ['Model', j.model],
                ['Suffix', j.user_provided_suffix],
                ['Fine-tuned model', j.fine_tuned_model],
                ['Training file', <a href={`#/datasets/${encodeURIComponent(j.training_file)}`}>{j.training_file}</a>],
                ['Created', when(j.created_at)],
                ['Finished', when(j.finished_at)],
                ['Trained tokens', num(j.trained_tokens)],
                ['Estimated cost', costUsd(j.estimated_cost)],
                ['Cost', costUsd(j.cost)],
                ['Error', j.error ? `${j.error.code ?? ''} ${j.error.message ?? ''}` : null],
              ]}
            />
          </Card>
          <Card title="Hyperparameters">
            <Facts rows={Object.entries({ ...j.hyperparameters, ...Object.fromEntries(Object.entries(j.lora ?? {}).map(([k, v]) => [`lora ${k}`, v])) }).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])} />
          </Card>
          <Card title="Loss" wide>
            <TimeChart label="training and validation loss" xLabel="step" x={curve.step} series={loss} />
          </Card>
          <Card title="Learning rate">
            <TimeChart label="learning rate" xLabel="step" x={curve.step} series={lr} height={160} />
          </Card>
          <Card title="Throughput">
            <TimeChart label="tokens per second" xLabel="step" x={curve.step} series={tps} height={160} />
          </Card>
          <Card title="Checkpoints" wide>
            <ErrorBox error={checkpoints.error} />
            <Table
              head={['Step', 'Checkpoint', 'Metrics', 'Created']}
              rows={(checkpoints.data ?? []).map((c) => [
                c.step_number,
                <code>{c.fine_tuned_model_checkpoint}</code>,
                Object.entries(c.metrics)
                  .filter(([k]) => k !== 'step')
                  .map(([k, v]) => `${k} ${num(v)}`)
                  .join(', '),
                when(c.created_at),
              ])}
              empty="No checkpoints yet."
            />
          </Card>
          <Card title="Timeline" wide>
            <ol className="timeline" tabIndex={0}>
              <li>
                <time>{when(j.created_at)}</time> created
              </li>
              {events.map((e) => (
                <li key={e.id} className={`level-${e.level}`}>
                  <time>{when(e.created_at)}</time> {e.message}
                </li>
              ))}
            </ol>
          </Card>
        </div>
      )}
    </Page>
  );
}

function JobActions({ job, onChange }: { job: Job; onChange: () => void }) {
  const [error, setError] = useState<Error | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [adapter, setAdapter] = useState(job.user_provided_suffix?.toLowerCase().replace(/[^a-z0-9._-]/g, '-') || 'my-adapter');
  const running = ['validating_files', 'queued', 'running'].includes(job.status);
  const cancel = async () => {
    if (!window.confirm(`Cancel job ${job.id}? Its container is stopped and the job cannot be resumed.`)) return;
    try {
      await call(api.POST('/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel', { params: { path: { fine_tuning_job_id: job.id } } }));
      onChange();
    } catch (err) {
      setError(err as Error);
    }
  };
  const register = async () => {
    try {
      const v = await call(api.POST('/v1/adapters/{adapter_name}/versions', { params: { path: { adapter_name: adapter } }, body: { job_id: job.id } }));
      setNote(`Registered as ${v.served_name}`);
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <div className="actions">
      {running ? (
        <button type="button" className="danger" onClick={cancel}>
          Cancel job
        </button>
      ) : null}
      {job.status === 'succeeded' ? (
        <span className="inline-form">
          <label>
            Adapter name <input value={adapter} onChange={(e) => setAdapter(e.target.value)} />
          </label>
          <button type="button" onClick={register}>
            Register as adapter version
          </button>
        </span>
      ) : null}
      {note ? <span role="status">{note}</span> : null}
      <ErrorBox error={error} />
    </div>
  );
}
