import { useState } from 'react';
import { api, call } from '../api/client';
import { loadPools } from '../api/pools';
import type { AdapterVersion, Pool } from '../api/views';
import { Card, ErrorBox, Loading, Page, short, Table, useLoad, when } from '../components/ui';

/** Every adapter's versions with their files' sha256 and lineage: job -> checkpoint -> version -> where deployed. */
export function AdaptersPage() {
  const { data, error } = useLoad(async () => {
    const [adapters, pools] = await Promise.all([call(api.GET('/v1/adapters')), loadPools()]);
    const versions = await Promise.all(
      adapters.data.map(async (a) => ({ adapter: a, versions: (await call(api.GET('/v1/adapters/{adapter_name}/versions', { params: { path: { adapter_name: a.name } } }))).data })),
    );
    return { versions, pools };
  }, []);
  return (
    <Page title="Adapters">
      <ErrorBox error={error} />
      {!data && !error ? <Loading what="adapters" /> : null}
      {data && !data.versions.length ? <p className="muted">No adapters yet: a succeeded job registers one, or import a PEFT directory.</p> : null}
      {data?.versions.map(({ adapter, versions }) => (
        <Card key={adapter.name} title={adapter.name} wide>
          <Table
            head={['Version', 'Base model', 'Rank', 'Lineage', 'Files (sha256)', 'Deployed', 'Created']}
            rows={versions.map((v) => [
              <code>{v.served_name}</code>,
              String(v.base_model ?? '—'),
              String(v.rank ?? '—'),
              <Lineage v={v} />,
              <Files files={v.files ?? []} />,
              deployedOn(data.pools, adapter.name, v.version),
              when(v.created_at),
            ])}
          />
        </Card>
      ))}
    </Page>
  );
}

function Lineage({ v }: { v: AdapterVersion }) {
  const l = v.lineage;
  return (
    <span className="lineage">
      {l.dataset_id ? <a href={`#/datasets/${encodeURIComponent(l.dataset_id)}`}>{l.dataset_id}</a> : null}
      {l.dataset_id ? ' → ' : null}
      {l.job_id ? <a href={`#/jobs/${encodeURIComponent(l.job_id)}`}>{l.job_id}</a> : null}
      {l.checkpoint_id ? ` → ${l.checkpoint_id}` : null}
      {l.imported_from ? `imported from ${l.imported_from}` : null}
      {!l.job_id && !l.imported_from ? l.source : null}
    </span>
  );
}

function Files({ files }: { files: AdapterVersion['files'] }) {
  const [open, setOpen] = useState(false);
  return (
    <span>
      {(open ? files : files.slice(0, 2)).map((f) => (
        <span key={f.name} className="file">
          {f.name} <code title={f.sha256}>{open ? f.sha256 : short(f.sha256, 12)}</code>
        </span>
      ))}
      <button type="button" className="link" onClick={() => setOpen(!open)}>
        {open ? 'less' : 'full sha256'}
      </button>
    </span>
  );
}

function deployedOn(pools: Pool[], adapter: string, version: number): string {
  const where = pools.flatMap((p) => {
    const roles = [
      ...(p.deployments.some((d) => d.adapter === adapter && d.version === version) ? ['deployed'] : []),
      ...(p.aliases.some((a) => a.adapter === adapter && a.version === version) ? [`alias ${adapter}`] : []),
      ...(p.aliases.some((a) => a.adapter === adapter && a.canary?.version === version) ? ['canary'] : []),
    ];
    return roles.length ? [`${p.name}: ${roles.join(', ')}`] : [];
  });
  return where.length ? where.join('; ') : '—';
}
