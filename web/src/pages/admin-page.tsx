import { FormEvent, useState } from 'react';
import { api, call } from '../api/client';
import { Card, ErrorBox, Loading, Page, Table, useLoad } from '../components/ui';

/**
 * Shown only for keys with the admin scope: GPU hosts, projects (tenants) with how many keys each has left, a new
 * key for one (the way back in for a tenant whose keys were all revoked), and new projects.
 */
export function AdminPage() {
  const hosts = useLoad(async () => (await call(api.GET('/v1/admin/gpu_hosts'))).data, []);
  // The first 100, newest first: enough for this page; the API and `loraplane admin projects` page through the rest.
  const projects = useLoad(async () => (await call(api.GET('/v1/admin/projects', { params: { query: { limit: 100 } } }))).data, []);
  const [name, setName] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const p = await call(api.POST('/v1/admin/projects', { body: { name } }));
      setCreated(`Project ${p.name} (${p.id}) created. Its first API key, shown once: ${p.api_key.value}`);
      setName('');
      projects.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  const issue = async (project: { id: string; name: string }) => {
    setError(null);
    try {
      const k = await call(api.POST('/v1/admin/projects/{project_id}/api_keys', { params: { path: { project_id: project.id } }, body: { name: 'issued by an operator' } }));
      setCreated(`A new key for ${project.name}, shown once: ${k.value}`);
      projects.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Page title="Admin">
      {created ? (
        <p role="status" className="notice">
          {created}
        </p>
      ) : null}
      <ErrorBox error={error} />
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
        <Card title="Projects" wide>
          <ErrorBox error={projects.error} />
          {!projects.data && !projects.error ? <Loading what="projects" /> : null}
          {projects.data ? (
            <Table
              head={['Project', 'Slug', 'Keys that work', 'Limits (rpm / tpm)', '']}
              rows={projects.data.map((p) => [
                p.name,
                p.slug,
                String(p.api_keys),
                `${p.rate_limits.rpm ?? '—'} / ${p.rate_limits.tpm ?? '—'}`,
                <button key="k" type="button" className="link" onClick={() => void issue(p)}>
                  New key for {p.name}
                </button>,
              ])}
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
        </Card>
      </div>
    </Page>
  );
}
