import { FormEvent, useEffect, useState } from 'react';
import { api, call, session } from './api/client';
import type { Project } from './api/views';
import { ErrorBox } from './components/ui';
import { AdaptersPage } from './pages/adapters-page';
import { AdminPage } from './pages/admin-page';
import { DatasetPage, DatasetsPage } from './pages/datasets-page';
import { ComparisonPage } from './pages/comparison-page';
import { EvalRunPage, EvalsPage } from './pages/evals-page';
import { JobPage } from './pages/job-page';
import { JobsPage } from './pages/jobs-page';
import { KeysPage } from './pages/keys-page';
import { NewJobPage } from './pages/new-job-page';
import { PlaygroundPage } from './pages/playground-page';
import { ServingPage } from './pages/serving-page';
import { UsagePage } from './pages/usage-page';

/** Routes live in the URL's hash, so the server needs no fallback and a reload keeps the page. */
function useRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV: [string, string][] = [
  ['jobs', 'Jobs'],
  ['new-job', 'New job'],
  ['datasets', 'Datasets'],
  ['adapters', 'Adapters'],
  ['serving', 'Serving'],
  ['evals', 'Evals'],
  ['playground', 'Playground'],
  ['usage', 'Usage'],
  ['keys', 'API keys'],
];

export function App() {
  const [project, setProject] = useState<Project | null>(null);
  const [checking, setChecking] = useState(Boolean(session.key()));
  useEffect(() => {
    if (!session.key()) return;
    call(api.GET('/v1/project'))
      .then(setProject, () => session.signOut())
      .finally(() => setChecking(false));
  }, []);
  if (checking) return <main className="signin" />;
  if (!project) return <SignIn onSignedIn={setProject} />;
  return <Shell project={project} onSignOut={() => (session.signOut(), (location.hash = ''), setProject(null))} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (p: Project) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<Error | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    session.signIn(key.trim());
    try {
      onSignedIn(await call(api.GET('/v1/project')));
    } catch (err) {
      session.signOut();
      setError(err as Error);
    }
  };
  return (
    <main className="signin">
      <form onSubmit={submit} className="card">
        <h1>loraplane</h1>
        <p className="muted">LoRA fine-tuning control plane</p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} required />
        <button type="submit">Sign in</button>
        <p className="muted small">The key stays in this browser tab (sessionStorage) and is sent only in the Authorization header.</p>
        <ErrorBox error={error} />
      </form>
    </main>
  );
}

function Shell({ project, onSignOut }: { project: Project; onSignOut: () => void }) {
  const [page = 'jobs', id, sub] = useRoute();
  const admin = project.scopes.includes('admin') || project.scopes.includes('*');
  const nav = admin ? [...NAV, ['admin', 'Admin'] as [string, string]] : NAV;
  return (
    <div className="shell">
      <nav aria-label="Main">
        <div className="brand">loraplane</div>
        <ul>
          {nav.map(([slug, name]) => (
            <li key={slug}>
              <a href={`#/${slug}`} aria-current={page === slug ? 'page' : undefined}>
                {name}
              </a>
            </li>
          ))}
        </ul>
        <div className="who">
          <span title="project">{project.name}</span>
          {admin ? <span className="badge">admin</span> : null}
          <button type="button" className="link" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </nav>
      <main>{route(page, id, admin, project.api_key_id, sub)}</main>
    </div>
  );
}

function route(page: string, id: string | undefined, admin: boolean, keyId: string, sub?: string) {
  switch (page) {
    case 'jobs':
      return id ? <JobPage id={id} /> : <JobsPage />;
    case 'new-job':
      return <NewJobPage />;
    case 'datasets':
      return id ? <DatasetPage id={id} /> : <DatasetsPage />;
    case 'adapters':
      return <AdaptersPage />;
    case 'serving':
      return <ServingPage />;
    case 'evals':
      if (id === 'comparisons' && sub) return <ComparisonPage id={sub} />;
      return id ? <EvalRunPage id={id} /> : <EvalsPage />;
    case 'playground':
      return <PlaygroundPage />;
    case 'usage':
      return <UsagePage />;
    case 'keys':
      return <KeysPage signedInWith={keyId} />;
    case 'admin':
      return admin ? <AdminPage /> : <p>Admin keys only.</p>;
    default:
      return <p>No such page.</p>;
  }
}
