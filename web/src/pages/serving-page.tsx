import { FormEvent, useState } from 'react';
import { api, call } from '../api/client';
import { loadPools } from '../api/pools';
import type { AliasEvent, Pool } from '../api/views';
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
    async () => (await call(api.GET('/v1/serving/pools/{pool}/aliases/{adapter_name}/history', { params: { path: { pool: pool.name, adapter_name: alias.adapter } } }))).data,
    [pool.name, alias.adapter, pool.revision],
  );
  const [action, setAction] = useState<Action>('rollback');
  const [version, setVersion] = useState('');
  const [replicas, setReplicas] = useState('1');
  // A pool's requests can be split even where it has too few replicas for a canary by replicas.
  const [by, setBy] = useState<'replicas' | 'requests'>('replicas');
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
      else if (action === 'canary') {
        const split = by === 'replicas' ? { replicas: Number(replicas) } : { request_share: Number(replicas) };
        await call(api.POST('/v1/serving/pools/{pool}/aliases/{adapter_name}/canary', { params: { path }, body: { version: Number(version), ...split, reason: r } }));
      }
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
  const canary = alias.canary;
  const share = canary ? (canary.request_share ?? Math.round((canary.replicas / Math.max(1, pool.replicas.length)) * 100)) : 0;
  return (
    <div className="alias" data-alias={alias.adapter}>
      <h4>
        <code>{alias.adapter}</code> → <span data-testid="alias-version">v{alias.version ?? '—'}</span>
        {canary ? (
          <span className="badge" data-testid="alias-canary">
            canary v{canary.version} {canary.request_share === null ? `on ${canary.replicas} replica(s), ${share}%` : `on ${share}% of requests`}
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
          <>
            <label>
              Canary by
              <select value={by} onChange={(e) => setBy(e.target.value === 'requests' ? 'requests' : 'replicas')}>
                <option value="replicas">replicas</option>
                <option value="requests">share of requests</option>
              </select>
            </label>
            <label>
              {by === 'replicas' ? 'Replicas' : 'Share of requests (%)'}
              <input type="number" min={by === 'replicas' ? 1 : 0} max={by === 'replicas' ? undefined : 100} required value={replicas} onChange={(e) => setReplicas(e.target.value)} />
            </label>
          </>
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
          head={['When', 'Action', 'From', 'To', 'Canary', 'Who', 'Why']}
          rows={(history.data ?? []).map((h) => [when(h.created_at), <span className="nowrap">{h.action}</span>, h.from_version ?? '—', h.to_version ?? '—', canaryShare(h), h.actor ?? '—', h.reason ?? '—'])}
          empty="No moves yet."
        />
      </details>
    </div>
  );
}

function canaryShare(h: AliasEvent): string {
  if (h.canary_request_share !== null && h.canary_request_share !== undefined) return `${h.canary_request_share}% of requests`;
  return h.canary_replicas ? `${h.canary_replicas} replica(s)` : '—';
}
