import { FormEvent, useState } from 'react';
import { api, call } from '../api/client';
import { Card, ErrorBox, Loading, Page, Table, useLoad } from '../components/ui';

/** Shown only for keys with the admin scope: GPU hosts and new projects (tenants). */
export function AdminPage() {
  const hosts = useLoad(async () => (await call(api.GET('/v1/admin/gpu_hosts'))).data, []);
  const [name, setName] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const p = await call(api.POST('/v1/admin/projects', { body: { name } }));
      setCreated(`Project ${p.name} (${p.id}) created. Its first API key, shown once: ${p.api_key.value}`);
      setName('');
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Page title="Admin">
      <div className="grid">
        <Card title="GPU hosts" wide>
          <ErrorBox error={hosts.error} />
          {!hosts.data && !hosts.error ? <Loading what="GPU hosts" /> : null}
          {hosts.data ? (
            <Table
              head={['Host', 'Status', 'GPUs', 'Details']}
              rows={hosts.data.map((h) => [h.name, h.enabled ? 'enabled' : 'disabled', String(h.gpus.length), JSON.stringify(Object.fromEntries(Object.entries(h).filter(([k]) => !['id', 'name', 'enabled', 'gpus', 'object'].includes(k))))])}
              empty="No GPU hosts registered (CPU models need none)."
            />
          ) : null}
        </Card>
        <Card title="New project">
          <form className="stack" onSubmit={create}>
            <label>
              Project name
              <input value={name} required onChange={(e) => setName(e.target.value)} />
            </label>
            <button type="submit">Create project</button>
          </form>
          {created ? <p role="status">{created}</p> : null}
          <ErrorBox error={error} />
        </Card>
      </div>
    </Page>
  );
}
