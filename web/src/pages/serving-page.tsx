import { FormEvent, useState } from 'react';
import { api, call } from '../api/client';
import { loadPools } from '../api/pools';
import type { AliasEvent, Page as List, Pool } from '../api/views';
import { Card, ErrorBox, Loading, Page, Status, Table, useLoad, when } from '../components/ui';

export function ServingPage() {
  const pools = useLoad(loadPools, []);
  return (
    <Page title="Serving">
      <ErrorBox error={pools.error} />
      {!pools.data && !pools.error ? <Loading what="pools" /> : null}
      {pools.data && !pools.data.length ? <p className="muted">No serving pools yet.</p> : null}
      {pools.data?.map((p) => <PoolView key={p.name} pool={p} onChange={pools.reload} />)}
    </Page>
  );
}

function PoolView({ pool, onChange }: { pool: Pool; onChange: () => void }) {
  return (
    <Card title={`Pool ${pool.name}`} wide>
      <p className="muted">
        base model {pool.base_model} · max LoRA rank {pool.max_lora_rank} · max LoRAs {pool.max_loras} · revision {pool.revision}
      </p>
      <h3>Replicas</h3>
      <Table
        head={['Replica', 'Status', 'In sync', 'Loaded adapters', 'Last error']}
        rows={pool.replicas.map((r) => [
          r.name,
          <Status value={r.status} />,
          r.in_sync ? 'yes' : 'no',
          r.adapters.map((a) => `${a.name} (${a.state})`).join(', ') || '—',
          r.last_error ?? '—',
        ])}
        empty="No replicas registered."
      />
      <h3>Deployed versions</h3>
      <Table head={['Served name', 'Warning']} rows={pool.deployments.map((d) => [<code>{d.served_name}</code>, d.warning ?? '—'])} empty="Nothing deployed." />
      <h3>Aliases</h3>
      {pool.aliases.length ? pool.aliases.map((a) => <AliasView key={a.adapter} pool={pool} alias={a} onChange={onChange} />) : <p className="muted">No aliases.</p>}
    </Card>
  );
}

type Action = 'rollout' | 'canary' | 'promote' | 'rollback';

function AliasView({ pool, alias, onChange }: { pool: Pool; alias: Pool['aliases'][number]; onChange: () => void }) {
  const history = useLoad(
    async () => (await call<List<AliasEvent>>(api.GET('/v1/serving/pools/{pool}/aliases/{adapter_name}/history', { params: { path: { pool: pool.name, adapter_name: alias.adapter } } }))).data,
    [pool.name, alias.adapter, pool.revision],
  );
  const [action, setAction] = useState<Action>('rollback');
  const [version, setVersion] = useState('');
  const [replicas, setReplicas] = useState('1');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const path = { pool: pool.name, adapter_name: alias.adapter };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const r = reason || undefined;
      if (action === 'rollout') await call(api.POST('/v1/serving/pools/{pool}/aliases/{adapter_name}/rollout', { params: { path }, body: { version: Number(version), reason: r } }));
      else if (action === 'canary') await call(api.POST('/v1/serving/pools/{pool}/aliases/{adapter_name}/canary', { params: { path }, body: { version: Number(version), replicas: Number(replicas), reason: r } }));
      else if (action === 'promote') await call(api.POST('/v1/serving/pools/{pool}/aliases/{adapter_name}/promote', { params: { path }, body: { reason: r } }));
      else await call(api.POST('/v1/serving/pools/{pool}/aliases/{adapter_name}/rollback', { params: { path }, body: { reason: r } }));
      setReason('');
      onChange();
    } catch (err) {
      // The promotion gate's refusal is shown exactly as the server worded it.
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  const share = alias.canary ? Math.round((alias.canary.replicas / Math.max(1, pool.replicas.length)) * 100) : 0;
  return (
    <div className="alias" data-alias={alias.adapter}>
      <h4>
        <code>{alias.adapter}</code> → <span data-testid="alias-version">v{alias.version ?? '—'}</span>
        {alias.canary ? (
          <span className="badge">
            canary v{alias.canary.version} on {alias.canary.replicas} replica(s), {share}%
          </span>
        ) : null}
      </h4>
      <form className="filters" onSubmit={submit} aria-label={`Move alias ${alias.adapter}`}>
        <label>
          Action
          <select value={action} onChange={(e) => setAction(e.target.value as Action)}>
            <option value="rollout">rollout</option>
            <option value="canary">canary</option>
            <option value="promote">promote</option>
            <option value="rollback">rollback</option>
          </select>
        </label>
        {action === 'rollout' || action === 'canary' ? (
          <label>
            Version
            <input type="number" min={1} required value={version} onChange={(e) => setVersion(e.target.value)} />
          </label>
        ) : null}
        {action === 'canary' ? (
          <label>
            Replicas
            <input type="number" min={1} required value={replicas} onChange={(e) => setReplicas(e.target.value)} />
          </label>
        ) : null}
        <label className="grow">
          Reason
          <input value={reason} maxLength={1000} onChange={(e) => setReason(e.target.value)} placeholder="why (kept in the history)" />
        </label>
        <button type="submit" disabled={busy}>
          {action[0].toUpperCase() + action.slice(1)}
        </button>
      </form>
      <ErrorBox error={error} />
      <details open>
        <summary>History</summary>
        <ErrorBox error={history.error} />
        <Table
          head={['When', 'Action', 'From', 'To', 'Canary replicas', 'Who', 'Why']}
          rows={(history.data ?? []).map((h) => [when(h.created_at), h.action, h.from_version ?? '—', h.to_version ?? '—', h.canary_replicas ?? '—', h.actor ?? '—', h.reason ?? '—'])}
          empty="No moves yet."
        />
      </details>
    </div>
  );
}
