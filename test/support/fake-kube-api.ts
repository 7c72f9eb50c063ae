import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { AddressInfo } from 'node:net';
import { FakeKubelet, Obj } from './fake-kubelet';

/**
 * A Kubernetes API server for tests, on node:http(s) with a throwaway self-signed certificate (client-node, like
 * kubectl, refuses plain HTTP), following the real API for exactly what KubernetesRuntime uses:
 * batch/v1 Jobs (create, get, list, delete with propagation, JSON patch), v1 Secrets (create, get), v1 Pods (get,
 * list), pod logs (`follow`, chunked text that ends when the container ends), and watches (`watch=true` with
 * `resourceVersion`, `allowWatchBookmarks`, `timeoutSeconds`, 410 Expired as an ERROR event once the version is
 * compacted). Errors are `Status` objects with the real reasons (NotFound, AlreadyExists, BadRequest).
 *
 * It also plays the Job controller and a kubelet (fake-kubelet.ts): a pod is created per Job, scheduled when the
 * node has the GPUs, started once its image is known and its Secret exists, and its container runs as a real
 * process on this machine. No Kubernetes API server can be installed here (none is packaged for npm or Debian).
 */

type Kind = 'jobs' | 'pods' | 'secrets';
interface WatchEvent { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; kind: Kind; object: Obj }
interface Watcher { kind: Kind; namespace: string; selector: Selector; res: http.ServerResponse; bookmarks: boolean }
type Selector = Array<[string, string]>;

const API_KIND: Record<Kind, { apiVersion: string; kind: string }> = {
  jobs: { apiVersion: 'batch/v1', kind: 'Job' },
  pods: { apiVersion: 'v1', kind: 'Pod' },
  secrets: { apiVersion: 'v1', kind: 'Secret' },
};

export interface FakeKubeOptions {
  /** nvidia.com/gpu the one node offers. */
  gpus?: number;
  /** image -> command run on this machine when a pod of that image starts; an image not here fails to pull. */
  images: Record<string, string[]>;
  /** Bookmark every this many ms on watches that asked for them. */
  bookmarkMs?: number;
  /** Extra environment for container processes (e.g. PATH). */
  processEnv?: Record<string, string>;
}

export class FakeKubeApi {
  readonly objects = new Map<string, Obj>();
  private rv = 100;
  private compactedRv = 0;
  private expireNext = false;
  private history: WatchEvent[] = [];
  private watchers = new Set<Watcher>();
  private logStreams = new Set<http.ServerResponse>();
  private server!: https.Server;
  private ca = '';
  private bookmarkTimer?: NodeJS.Timeout;
  readonly kubelet: FakeKubelet;
  /** Every request as `METHOD path?query`, for assertions on what the runtime asked. */
  readonly requests: string[] = [];
  url = '';

  constructor(readonly options: FakeKubeOptions) {
    this.kubelet = new FakeKubelet(this, options.gpus ?? 0);
  }

  async start(): Promise<string> {
    const { key, cert } = selfSignedCertificate();
    this.ca = cert;
    this.server = https.createServer({ key, cert }, (req, res) => {
      this.handle(req, res).catch((err) => this.status(res, 500, 'InternalError', String(err?.stack ?? err)));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.bookmarkTimer = setInterval(() => this.bookmark(), this.options.bookmarkMs ?? 200);
    return this.url;
  }

  async stop(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    this.kubelet.shutdown();
    for (const w of this.watchers) w.res.destroy();
    for (const s of this.logStreams) s.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** A kubeconfig (YAML is a superset of JSON) pointing at this server with a bearer token. */
  kubeconfig(namespace = 'ml'): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.ca).toString('base64') } }],
      users: [{ name: 'fake', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace } }],
      'current-context': 'fake',
    });
  }

  // ---- test controls -------------------------------------------------------------------------------------------

  /** Breaks every open log stream (a dropped connection, an API server restart). */
  dropLogStreams(): void {
    for (const s of this.logStreams) s.socket?.destroy();
  }

  /** Breaks every watch connection. */
  dropWatches(): void {
    for (const w of this.watchers) w.res.socket?.destroy();
  }

  /** etcd compaction: a watch from any version before now gets 410 Expired. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** The next watch request is answered 410 Expired whatever its version (as when compaction races the request). */
  expireNextWatch(): void {
    this.expireNext = true;
  }

  list(kind: Kind, namespace: string, selector: Selector = []): Obj[] {
    return [...this.objects.values()].filter((o) => o.kind === API_KIND[kind].kind && o.metadata.namespace === namespace && matches(o, selector));
  }

  get(kind: Kind, namespace: string, name: string): Obj | undefined {
    return this.objects.get(`${kind}/${namespace}/${name}`);
  }

  // ---- storage, as the API server and the controllers write it ----------------------------------------------------

  put(kind: Kind, object: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    object.metadata.resourceVersion = String(++this.rv);
    this.objects.set(`${kind}/${object.metadata.namespace}/${object.metadata.name}`, object);
    this.emit({ rv: this.rv, type, kind, object });
    return object;
  }

  /** Updates an object in place through `fn` (a controller's status write); no-op when it is gone. */
  update(kind: Kind, namespace: string, name: string, fn: (o: Obj) => void): Obj | undefined {
    const current = this.get(kind, namespace, name);
    if (!current) return undefined;
    const next = structuredClone(current);
    fn(next);
    return this.put(kind, next, 'MODIFIED');
  }

  remove(kind: Kind, namespace: string, name: string): void {
    const object = this.get(kind, namespace, name);
    if (!object) return;
    this.objects.delete(`${kind}/${namespace}/${name}`);
    object.metadata.resourceVersion = String(++this.rv);
    this.emit({ rv: this.rv, type: 'DELETED', kind, object });
    // The garbage collector: dependents of a deleted owner go too (pods through the kubelet's graceful stop).
    for (const dep of [...this.objects.values()]) {
      if (!dep.metadata.ownerReferences?.some((r: Obj) => r.uid === object.metadata.uid)) continue;
      if (dep.kind === 'Pod') this.kubelet.deletePod(dep);
      else this.remove(dep.kind === 'Secret' ? 'secrets' : 'jobs', dep.metadata.namespace, dep.metadata.name);
    }
  }

  private emit(event: WatchEvent): void {
    this.history.push(event);
    for (const w of this.watchers) {
      if (w.kind === event.kind && w.namespace === event.object.metadata.namespace && matches(event.object, w.selector)) {
        w.res.write(JSON.stringify({ type: event.type, object: event.object }) + '\n');
      }
    }
  }

  private bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const object = { ...API_KIND[w.kind], metadata: { resourceVersion: String(this.rv) } };
      w.res.write(JSON.stringify({ type: 'BOOKMARK', object }) + '\n');
    }
  }

  // ---- HTTP ----------------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.headers.authorization !== 'Bearer fake-token') return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    const m = /^\/(?:api\/v1|apis\/batch\/v1)\/namespaces\/([^/]+)\/(jobs|pods|secrets)(?:\/([^/]+))?(?:\/(log))?$/.exec(url.pathname);
    if (!m) return this.status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const [, namespace, kind, name, sub] = m as unknown as [string, string, Kind, string | undefined, string | undefined];
    const expected = kind === 'jobs' ? '/apis/batch/v1/' : '/api/v1/';
    if (!url.pathname.startsWith(expected)) return this.status(res, 404, 'NotFound', `the server could not find the requested resource`);
    const q = url.searchParams;
    const body = req.method === 'POST' || req.method === 'PATCH' || req.method === 'DELETE' ? await readBody(req) : undefined;

    if (sub === 'log' && kind === 'pods' && name && req.method === 'GET') return this.log(res, namespace, name, q);
    if (!name && req.method === 'GET') {
      const selector = [...parseSelector(q.get('labelSelector')), ...parseSelector(q.get('fieldSelector'))];
      if (q.get('watch') === 'true') return this.watch(res, kind, namespace, selector, q);
      const items = this.list(kind, namespace, selector);
      return json(res, 200, { apiVersion: API_KIND[kind].apiVersion, kind: `${API_KIND[kind].kind}List`, metadata: { resourceVersion: String(this.rv) }, items });
    }
    if (!name && req.method === 'POST') return this.create(res, kind, namespace, body as Obj);
    if (!name) return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    const object = this.get(kind, namespace, name);
    if (!object) return this.status(res, 404, 'NotFound', `${kind === 'jobs' ? 'jobs.batch' : kind} "${name}" not found`, { name, kind });
    if (req.method === 'GET') return json(res, 200, object);
    if (req.method === 'DELETE') {
      // DeleteOptions come as query parameters or as a body; the body wins, as in the API server.
      const propagation = (body as Obj | undefined)?.propagationPolicy ?? q.get('propagationPolicy') ?? undefined;
      if (kind === 'jobs') this.kubelet.deleteJob(object, propagation);
      else if (kind === 'pods') this.kubelet.deletePod(object);
      else this.remove(kind, namespace, name);
      return json(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: kind === 'jobs' ? 'batch' : '', kind, uid: object.metadata.uid } });
    }
    if (req.method === 'PATCH' && kind === 'jobs') return this.patch(req, res, namespace, name, body);
    return this.status(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  private create(res: http.ServerResponse, kind: Kind, namespace: string, object: Obj): void {
    const problem = validate(kind, namespace, object);
    if (problem) return this.status(res, 422, 'Invalid', problem);
    if (this.get(kind, namespace, object.metadata.name)) {
      return this.status(res, 409, 'AlreadyExists', `${kind === 'jobs' ? 'jobs.batch' : kind} "${object.metadata.name}" already exists`, { name: object.metadata.name, kind });
    }
    const stored = structuredClone(object);
    stored.metadata = { ...stored.metadata, namespace, uid: randomUUID(), creationTimestamp: new Date().toISOString(), generation: 1 };
    if (kind === 'secrets' && stored.stringData) {
      stored.data = { ...(stored.data ?? {}), ...Object.fromEntries(Object.entries(stored.stringData as Record<string, string>).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
      delete stored.stringData;
    }
    if (kind === 'jobs') stored.status = {};
    this.put(kind, stored, 'ADDED');
    if (kind === 'jobs') this.kubelet.jobCreated(stored);
    if (kind === 'secrets') this.kubelet.secretCreated();
    json(res, 201, this.get(kind, namespace, object.metadata.name));
  }

  /** JSON patch (RFC 6902) `replace`/`add` on spec fields, the one patch type the runtime sends. */
  private patch(req: http.IncomingMessage, res: http.ServerResponse, namespace: string, name: string, body: unknown): void {
    if (req.headers['content-type'] !== 'application/json-patch+json') return this.status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    const ops = body as Array<{ op: string; path: string; value: unknown }>;
    const updated = this.update('jobs', namespace, name, (job) => {
      for (const op of ops) {
        if (op.op !== 'replace' && op.op !== 'add') throw new Error(`unsupported op ${op.op}`);
        const keys = op.path.split('/').slice(1);
        let target = job;
        for (const key of keys.slice(0, -1)) target = target[key];
        target[keys[keys.length - 1]] = op.value;
      }
    });
    if (updated) this.kubelet.jobUpdated(updated);
    json(res, 200, updated);
  }

  private watch(res: http.ServerResponse, kind: Kind, namespace: string, selector: Selector, q: URLSearchParams): void {
    const from = Number(q.get('resourceVersion') ?? this.rv);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (from < this.compactedRv || this.expireNext) {
      this.expireNext = false;
      const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${this.compactedRv})`, reason: 'Expired', code: 410 };
      res.end(JSON.stringify({ type: 'ERROR', object: status }) + '\n');
      return;
    }
    const watcher: Watcher = { kind, namespace, selector, res, bookmarks: q.get('allowWatchBookmarks') === 'true' };
    for (const e of this.history) {
      if (e.rv > from && e.kind === kind && e.object.metadata.namespace === namespace && matches(e.object, selector)) {
        res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
      }
    }
    this.watchers.add(watcher);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      clearTimeout(timer);
      this.watchers.delete(watcher);
    });
  }

  /** GET .../pods/{name}/log: the container's output so far, then (follow=true) new output until it ends. */
  private log(res: http.ServerResponse, namespace: string, name: string, q: URLSearchParams): void {
    const pod = this.get('pods', namespace, name);
    if (!pod) return this.status(res, 404, 'NotFound', `pods "${name}" not found`);
    const container = q.get('container') ?? pod.spec.containers[0].name;
    const output = this.kubelet.output(pod.metadata.uid);
    if (!output) {
      const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? 'ContainerCreating';
      return this.status(res, 400, 'BadRequest', `container "${container}" in pod "${name}" is waiting to start: ${waiting}`);
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    res.write(output.text);
    if (q.get('follow') !== 'true' || output.ended) return void res.end();
    this.logStreams.add(res);
    const onData = (chunk: string) => res.write(chunk);
    const onEnd = () => res.end();
    output.events.on('data', onData).once('end', onEnd);
    res.on('close', () => {
      this.logStreams.delete(res);
      output.events.off('data', onData).off('end', onEnd);
    });
  }

  status(res: http.ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void {
    json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code });
  }
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** Equality-based label selectors (`a=b,c=d`), the form the runtime sends. */
export function parseSelector(raw: string | null): Selector {
  if (!raw) return [];
  return raw.split(',').map((term) => {
    const [k, v] = term.split('=');
    if (v === undefined) throw new Error(`unsupported selector term ${term}`);
    return [k, v];
  });
}

/** Label terms, and the one field selector the runtime uses (`metadata.name=`). */
function matches(object: Obj, selector: Selector): boolean {
  const labels = object.metadata?.labels ?? {};
  return selector.every(([k, v]) => (k === 'metadata.name' ? object.metadata?.name === v : labels[k] === v));
}

/** The checks the real API server makes on what the runtime sends (names, required fields). */
function validate(kind: Kind, namespace: string, object: Obj): string | null {
  const name: unknown = object?.metadata?.name;
  if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
    return `metadata.name: Invalid value: "${String(name)}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`;
  }
  if (object.metadata.namespace && object.metadata.namespace !== namespace) return 'metadata.namespace: Invalid value: the namespace of the provided object does not match the namespace sent on the request';
  if (object.kind !== API_KIND[kind].kind || object.apiVersion !== API_KIND[kind].apiVersion) return `kind/apiVersion: expected ${API_KIND[kind].apiVersion} ${API_KIND[kind].kind}`;
  for (const [k, v] of Object.entries((object.metadata.labels ?? {}) as Record<string, string>)) {
    if (!/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v) || v.length > 63) return `metadata.labels: Invalid value: "${v}" (label ${k})`;
  }
  if (kind === 'jobs') {
    const pod = object.spec?.template?.spec;
    if (!pod?.containers?.length) return 'spec.template.spec.containers: Required value';
    if (!['Never', 'OnFailure'].includes(pod.restartPolicy)) return `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`;
  }
  return null;
}

/** A certificate for 127.0.0.1 valid for a day, made with the openssl CLI (Node has no certificate builder). */
function selfSignedCertificate(): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-kube-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=fake-kube-api',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
