import { FormEvent, useState } from 'react';
import { api, call } from '../api/client';
import type { paths } from '../api/openapi';
import type { Estimate } from '../api/views';

type CreateJobBody = paths['/v1/fine_tuning/jobs']['post']['requestBody']['content']['application/json'];
import { Card, ErrorBox, Facts, num, Page, usd, useLoad } from '../components/ui';

/** Pick a dataset and a model; the server's dry run shows the cost and the resolved hyperparameters before launch. */
export function NewJobPage() {
  const datasets = useLoad(async () => (await call(api.GET('/v1/datasets', { params: { query: { limit: 100 } } }))).data.filter((d) => d.status === 'ready'), []);
  const models = useLoad(async () => (await call(api.GET('/v1/models'))).data.filter((m) => !m.parent), []);
  const [form, setForm] = useState({ training_file: '', model: '', suffix: '', n_epochs: '', r: '' });
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => (setForm({ ...form, [k]: e.target.value }), setEstimate(null));
  const body = (): CreateJobBody => ({
    model: form.model || models.data?.[0]?.id || '',
    training_file: form.training_file || datasets.data?.[0]?.id || '',
    ...(form.suffix ? { suffix: form.suffix } : {}),
    ...(form.n_epochs ? { hyperparameters: { n_epochs: Number(form.n_epochs) } } : {}),
    ...(form.r ? { lora: { r: Number(form.r) } } : {}),
  });
  const onEstimate = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      setEstimate(await call(api.POST('/v1/fine_tuning/jobs/estimate', { body: body() })));
    } catch (err) {
      setError(err as Error);
    }
  };
  const launch = async () => {
    try {
      const job = await call(api.POST('/v1/fine_tuning/jobs', { body: body() }));
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Page title="New job">
      <div className="grid">
        <Card title="Dataset and model">
          <ErrorBox error={datasets.error ?? models.error} />
          <form className="stack" onSubmit={onEstimate}>
            <label>
              Dataset
              <select value={form.training_file} onChange={set('training_file')}>
                {(datasets.data ?? []).map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.filename} ({d.id})
                  </option>
                ))}
              </select>
            </label>
            <label>
              Model
              <select value={form.model} onChange={set('model')}>
                {(models.data ?? []).map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.id}
                    {m.development ? ' (development model)' : ''}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Suffix
              <input value={form.suffix} onChange={set('suffix')} placeholder="letters, digits, - and _" />
            </label>
            <label>
              Epochs
              <input type="number" min={1} value={form.n_epochs} onChange={set('n_epochs')} placeholder="auto" />
            </label>
            <label>
              LoRA rank
              <input type="number" min={1} value={form.r} onChange={set('r')} placeholder="default" />
            </label>
            <button type="submit">Estimate cost</button>
          </form>
          <ErrorBox error={error} />
        </Card>
        {estimate ? (
          <Card title="Before launch">
            <Facts
              rows={[
                ['Model', estimate.model],
                ['Method', estimate.method],
                ['Estimated cost', usd(estimate.usd)],
                ...Object.entries(estimate)
                  .filter(([k, v]) => !['object', 'model', 'method', 'hyperparameters', 'usd'].includes(k) && typeof v !== 'object')
                  .map(([k, v]) => [k.replace(/_/g, ' '), typeof v === 'number' ? num(v) : String(v)] as [string, string]),
              ]}
            />
            <h3>Resolved hyperparameters</h3>
            <Facts rows={Object.entries(estimate.hyperparameters).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])} />
            <button type="button" onClick={launch}>
              Launch job
            </button>
          </Card>
        ) : null}
      </div>
    </Page>
  );
}
