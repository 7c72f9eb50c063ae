import { ReactNode, useCallback, useEffect, useState } from 'react';
import { ApiError } from '../api/client';

/** Loads data for a page; `reload` re-runs it (after an action). Errors are kept and shown as the server wrote them. */
/**
 * Loads data for a view. When the deps change (another dataset, another job), what was loaded for the old deps is
 * never returned: a page reached by a hash change shows "loading", not the previous item's content under the new
 * item's heading. A reload() keeps the current data on screen until the fresh data arrives (no flicker while polling).
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: Error; reload: () => void } {
  const key = JSON.stringify(deps);
  const [state, setState] = useState<{ key?: string; data?: T; error?: Error }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ key, data }),
      (error: Error) => live && setState({ key, error }),
    );
    return () => {
      live = false;
    };
  }, [key, tick]); // eslint-disable-line react-hooks/exhaustive-deps
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return state.key === key ? { data: state.data, error: state.error, reload } : { reload };
}

export function ErrorBox({ error }: { error?: Error | null }) {
  if (!error) return null;
  const param = error instanceof ApiError && error.param ? ` (${error.param})` : '';
  return (
    <p className="error" role="alert">
      {error.message}
      {param}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p className="muted">Loading {what}…</p>;
}

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · loraplane`;
  }, [title]);
  return (
    <section className="page">
      <header className="page-head">
        <h1>{title}</h1>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Card({ title, children, wide }: { title: string; children: ReactNode; wide?: boolean }) {
  return (
    <section className={wide ? 'card wide' : 'card'}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** Key/value pairs as a definition list; values are rendered as text. */
export function Facts({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <dl className="facts">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v ?? '—'}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Table({ caption, head, rows, empty = 'Nothing yet.' }: { caption?: string; head: string[]; rows: ReactNode[][]; empty?: string }) {
  if (!rows.length) return <p className="muted">{empty}</p>;
  return (
    <div className="table-wrap" tabIndex={0}>
      <table>
        {caption ? <caption>{caption}</caption> : null}
        <thead>
          <tr>
            {head.map((h) => (
              <th key={h} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((c, j) => (
                <td key={j}>{c}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Status({ value }: { value: string }) {
  return <span className={`status status-${value.replace(/[^a-z_]/g, '')}`}>{value.replace(/_/g, ' ')}</span>;
}

export const when = (unix: number | null | undefined) => (unix ? new Date(unix * 1000).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—');
export const usd = (x: unknown) => (typeof x === 'number' ? (x < 0.01 && x > 0 ? `$${x.toPrecision(2)}` : `$${x.toFixed(2)}`) : '—');
export const num = (x: unknown, digits = 4) => (typeof x === 'number' ? (Number.isInteger(x) ? x.toLocaleString('en-US') : x.toPrecision(digits)) : '—');
export const pct = (x: number | null | undefined) => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : '—');
export const short = (s: string, n = 12) => (s.length > n ? `${s.slice(0, n)}…` : s);
/** A cost object's dollars: estimates and actuals are both `{ usd, ... }` (JSON the API documents as unknown). */
export const costUsd = (c: unknown) => usd(typeof c === 'object' && c !== null && 'usd' in c ? c.usd : undefined);
