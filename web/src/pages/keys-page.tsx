import { FormEvent, useState } from 'react';
import { api, call, session } from '../api/client';
import { Card, ErrorBox, Loading, Page, Table, useLoad, when } from '../components/ui';

type Scope = 'project' | 'inference' | 'read';

const SCOPES: { value: Scope; label: string }[] = [
  { value: 'project', label: 'Everything in this project' },
  { value: 'inference', label: 'Call models only (an application)' },
  { value: 'read', label: 'Read only (a monitor)' },
];

/**
 * The project's API keys: what each may do, a new one (its value shown here once: only its hash is stored), and
 * revoking one, confirmed in place. The server decides who may revoke what (a key that can do more than the caller
 * stays) and says why when it refuses.
 */
export function KeysPage({ signedInWith }: { signedInWith: string }) {
  const keys = useLoad(async () => (await call(api.GET('/v1/api_keys'))).data, []);
  const [name, setName] = useState('');
  const [scope, setScope] = useState<Scope>('inference');
  const [created, setCreated] = useState<{ name: string; value: string } | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  /** Runs an action, then shows the list as it is now (unless the action signed this tab out: `false`). */
  const act = async (work: () => Promise<void | false>) => {
    setError(null);
    try {
      if ((await work()) !== false) keys.reload();
    } catch (err) {
      setError(err as Error);
    }
  };
  const create = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      const k = await call(api.POST('/v1/api_keys', { body: { name, scopes: [scope] } }));
      setCreated({ name: k.name, value: k.value });
      setName('');
    });
  };
  const revoke = (id: string) =>
    act(async () => {
      setConfirming(null);
      await call(api.DELETE('/v1/api_keys/{key_id}', { params: { path: { key_id: id } } }));
      if (id !== signedInWith) return;
      // The key this tab signed in with no longer works: back to the sign-in form, nothing more asked with it.
      session.signOut();
      location.reload();
      return false;
    });
  return (
    <Page title="API keys">
      <div className="grid">
        <Card title="Keys that work" wide>
          <ErrorBox error={keys.error} />
          {!keys.data && !keys.error ? <Loading what="API keys" /> : null}
          {keys.data ? (
            <Table
              head={['Name', 'Key', 'May', 'Created', '']}
              rows={keys.data.map((k) => [
                k.id === signedInWith ? `${k.name} (this key)` : k.name,
                <code key="v">{k.redacted_value}</code>,
                k.scopes.map((s) => SCOPES.find((x) => x.value === s)?.label ?? s).join(', '),
                when(k.created_at),
                confirming === k.id ? (
                  <span key="c" className="row-actions">
                    <button type="button" className="danger" onClick={() => void revoke(k.id)}>
                      Revoke {k.name}
                      {k.id === signedInWith ? ' (signs you out)' : ''}
                    </button>
                    <button type="button" className="link" onClick={() => setConfirming(null)}>
                      Keep
                    </button>
                  </span>
                ) : (
                  <button key="r" type="button" className="link" onClick={() => setConfirming(k.id)} aria-label={`Revoke ${k.name}…`}>
                    Revoke…
                  </button>
                ),
              ])}
              empty="No keys (an operator can issue one)."
            />
          ) : null}
          <ErrorBox error={error} />
        </Card>
        <Card title="New key">
          <form className="stack" onSubmit={create}>
            <label>
              Name
              <input value={name} required maxLength={100} onChange={(e) => setName(e.target.value)} />
            </label>
            <label>
              May
              <select value={scope} onChange={(e) => setScope(e.target.value as Scope)}>
                {SCOPES.map((s) => (
                  <option key={s.value} value={s.value}>
                    {s.label}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">Create key</button>
          </form>
          {created ? (
            <p role="status">
              Key {created.name}, shown this once (copy it now): <code className="secret">{created.value}</code>
            </p>
          ) : null}
        </Card>
      </div>
    </Page>
  );
}
