'use strict';
/**
 * The adapter agent: runs beside one vLLM replica and makes it serve the LoRA adapters the control plane wants.
 *
 * - The control plane PUTs the desired set (authenticated by a token): each entry is a vLLM `lora_name` (an
 *   immutable `name@version`, or a moving alias `name`) and the version's files as presigned GET URLs with sha256.
 *   The agent holds no S3 credentials.
 * - It downloads each version once into ADAPTER_DIR/<version>/, verifying size and sha256, and only then loads it.
 * - It reads what vLLM has from GET /v1/models, loads what is missing, re-points an alias with `load_inplace`, and
 *   unloads what is no longer desired. vLLM forgets runtime-loaded adapters when it restarts; the periodic sync
 *   loads them again without anyone asking.
 * - Files stay on disk while an adapter that uses them is loaded (vLLM's LRU cache re-reads `lora_path`); other
 *   version directories are garbage-collected.
 * Speaks vLLM's runtime LoRA API exactly as shared/reference/vllm-lora.md documents it. Zero dependencies, so it
 * runs in a node-only image (adapters/agent/Dockerfile).
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const http = require('node:http');
const path = require('node:path');

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
/**
 * Written first into every directory the agent creates. Garbage collection removes only directories that carry it
 * (or `.complete`, which agents before this marker wrote into each finished version), so whatever else sits in
 * ADAPTER_DIR (an operator's files, a volume shared by mistake) is never deleted.
 */
const OWNED = '.loraplane-agent';
const FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The agent's whole configuration, read once. */
function loadConfig(env) {
  const problems = [];
  const token = env.AGENT_TOKEN ?? '';
  if (token.length < 16) problems.push('AGENT_TOKEN: required, at least 16 characters');
  const num = (name, def, min) => {
    const v = env[name] === undefined || env[name] === '' ? def : Number(env[name]);
    if (!Number.isFinite(v) || v < min) problems.push(`${name}: must be a number >= ${min}`);
    return v;
  };
  const config = {
    token,
    host: env.AGENT_HOST || '0.0.0.0',
    port: num('AGENT_PORT', 9900, 0),
    vllmUrl: (env.VLLM_URL || 'http://127.0.0.1:8000').replace(/\/+$/, ''),
    vllmApiKey: env.VLLM_API_KEY || null,
    adapterDir: env.ADAPTER_DIR || '/var/lib/loraplane/adapters',
    syncIntervalMs: num('SYNC_INTERVAL_MS', 5000, 50),
    httpTimeoutMs: num('HTTP_TIMEOUT_MS', 30000, 100),
  };
  if (!path.isAbsolute(config.adapterDir)) problems.push('ADAPTER_DIR: must be an absolute path (vLLM resolves relative paths as hub ids)');
  if (problems.length) throw new Error(`invalid agent configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}

/** Checks a desired-state document; throws with the field at fault. */
function parseDesired(body) {
  if (!body || typeof body !== 'object') throw fieldError('body', 'must be a JSON object');
  if (!Number.isInteger(body.generation) || body.generation < 0) throw fieldError('generation', 'must be a non-negative integer');
  if (!Array.isArray(body.adapters)) throw fieldError('adapters', 'must be a list');
  const seen = new Set();
  const adapters = body.adapters.map((a, i) => {
    const at = `adapters[${i}]`;
    if (!a || typeof a !== 'object') throw fieldError(at, 'must be an object');
    if (typeof a.name !== 'string' || !NAME.test(a.name)) throw fieldError(`${at}.name`, 'must be a vLLM lora_name (letters, digits, . _ @ -)');
    if (seen.has(a.name)) throw fieldError(`${at}.name`, `'${a.name}' appears twice`);
    seen.add(a.name);
    if (typeof a.version !== 'string' || !NAME.test(a.version)) throw fieldError(`${at}.version`, 'must name an immutable version, e.g. support-bot@3');
    if (!Array.isArray(a.files) || a.files.length === 0) throw fieldError(`${at}.files`, 'must be a non-empty list');
    const files = a.files.map((f, j) => {
      const fat = `${at}.files[${j}]`;
      if (!f || typeof f.name !== 'string' || !FILE.test(f.name)) throw fieldError(`${fat}.name`, 'must be a plain file name');
      if (typeof f.url !== 'string' || !/^https?:\/\//.test(f.url)) throw fieldError(`${fat}.url`, 'must be an http(s) URL');
      if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) throw fieldError(`${fat}.sha256`, 'must be 64 hex characters');
      if (!Number.isInteger(f.bytes) || f.bytes < 0) throw fieldError(`${fat}.bytes`, 'must be a non-negative integer');
      return { name: f.name, url: f.url, sha256: f.sha256, bytes: f.bytes };
    });
    if (!files.some((f) => f.name === 'adapter_config.json')) throw fieldError(`${at}.files`, 'must include adapter_config.json');
    return { name: a.name, version: a.version, files };
  });
  // One version, one set of files: two entries naming the same version must agree (an alias and its version do).
  const byVersion = new Map();
  for (const a of adapters) {
    const key = JSON.stringify(a.files.map((f) => [f.name, f.sha256]).sort());
    if (byVersion.has(a.version) && byVersion.get(a.version) !== key) throw fieldError('adapters', `version ${a.version} is given two different file sets`);
    byVersion.set(a.version, key);
  }
  return { generation: body.generation, adapters };
}

function fieldError(field, message) {
  const err = new Error(`${field}: ${message}`);
  err.status = 400;
  err.field = field;
  return err;
}

class Agent {
  constructor(config, log = (line) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`)) {
    this.config = config;
    this.log = log;
    this.desired = { generation: -1, adapters: [] };
    /** name -> { state: 'pending'|'downloading'|'ready'|'loaded'|'error', error?, at } */
    this.status = new Map();
    this.vllm = { reachable: null, error: null, loaded: [] };
    this.lastSyncAt = null;
    this.running = null;
    this.again = false;
    this.timer = null;
  }

  versionDir(version) {
    return path.join(this.config.adapterDir, version);
  }

  setDesired(doc) {
    if (doc.generation < this.desired.generation) throw Object.assign(new Error(`generation ${doc.generation} is older than ${this.desired.generation}`), { status: 400, field: 'generation' });
    this.desired = doc;
    for (const name of [...this.status.keys()]) if (!doc.adapters.some((a) => a.name === name)) this.status.delete(name);
    for (const a of doc.adapters) if (!this.status.has(a.name)) this.status.set(a.name, { state: 'pending', at: Date.now() });
    this.sync();
  }

  report() {
    return {
      generation: this.desired.generation,
      last_sync_at: this.lastSyncAt,
      vllm: this.vllm,
      adapters: this.desired.adapters.map((a) => ({ name: a.name, version: a.version, ...this.status.get(a.name) })),
    };
  }

  start() {
    const tick = () => {
      this.sync().finally(() => {
        this.timer = setTimeout(tick, this.config.syncIntervalMs);
        this.timer.unref?.();
      });
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** One reconcile pass at a time; a request during a pass schedules one more right after it. */
  sync() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.reconcile()
      .catch((err) => this.log({ level: 'error', msg: 'sync failed', error: String(err && err.message) }))
      .finally(() => {
        this.running = null;
        this.lastSyncAt = new Date().toISOString();
        if (this.again) {
          this.again = false;
          this.sync();
        }
      });
    return this.running;
  }

  async reconcile() {
    const { adapters } = this.desired;
    // 1. Files first: nothing is handed to vLLM before every byte is verified.
    const versions = new Map(adapters.map((a) => [a.version, a]));
    for (const [version, a] of versions) {
      try {
        await this.ensureFiles(version, a.files);
      } catch (err) {
        for (const x of adapters) if (x.version === version) this.mark(x.name, 'error', `download of ${version} failed: ${err.message}`);
      }
    }
    // 2. What vLLM has now.
    let loaded;
    try {
      loaded = await this.loadedAdapters();
      this.vllm = { reachable: true, error: null, loaded: [...loaded].map(([name, root]) => ({ name, root })) };
    } catch (err) {
      this.vllm = { reachable: false, error: err.message, loaded: [] };
      return;
    }
    // 3. Load what is missing; re-point what points elsewhere (an alias moving to another version).
    for (const a of adapters) {
      const dir = this.versionDir(a.version);
      if (!(await exists(path.join(dir, '.complete')))) continue;
      const root = loaded.get(a.name);
      if (root === dir) {
        this.mark(a.name, 'loaded');
        continue;
      }
      const res = await this.vllmPost('/v1/load_lora_adapter', { lora_name: a.name, lora_path: dir, load_inplace: root !== undefined });
      if (res.status === 200) {
        this.mark(a.name, 'loaded');
        this.log({ level: 'info', msg: root === undefined ? 'loaded' : 'reloaded in place', adapter: a.name, version: a.version });
        loaded.set(a.name, dir);
      } else if (res.status === 404) {
        // vLLM cannot see the files: fetch them again on the next pass.
        await fsp.rm(dir, { recursive: true, force: true });
        this.mark(a.name, 'error', `vLLM found no adapter at ${dir}; re-downloading`);
      } else {
        this.mark(a.name, 'error', `vLLM refused the adapter (${res.status}): ${res.message}`);
      }
    }
    // 4. Unload what is no longer desired.
    const wanted = new Set(adapters.map((a) => a.name));
    for (const name of loaded.keys()) {
      if (wanted.has(name)) continue;
      const res = await this.vllmPost('/v1/unload_lora_adapter', { lora_name: name });
      if (res.status === 200 || res.status === 404) {
        loaded.delete(name);
        this.log({ level: 'info', msg: 'unloaded', adapter: name });
      }
    }
    // 5. Collect the version directories this agent made that nothing desired or loaded uses.
    const keep = new Set([...adapters.map((a) => this.versionDir(a.version)), ...loaded.values()]);
    const entries = await fsp.readdir(this.config.adapterDir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const dir = path.join(this.config.adapterDir, e.name);
      if (e.isDirectory() && !keep.has(dir) && ((await exists(path.join(dir, OWNED))) || (await exists(path.join(dir, '.complete'))))) {
        await fsp.rm(dir, { recursive: true, force: true });
        this.log({ level: 'info', msg: 'removed files', dir });
      }
    }
  }

  mark(name, state, error) {
    if (!this.status.has(name)) return;
    this.status.set(name, error ? { state, error, at: Date.now() } : { state, at: Date.now() });
  }

  async ensureFiles(version, files) {
    const dir = this.versionDir(version);
    if (await exists(path.join(dir, '.complete'))) return;
    for (const a of this.desired.adapters) if (a.version === version) this.mark(a.name, 'downloading');
    const tmp = `${dir}.partial-${crypto.randomBytes(4).toString('hex')}`;
    await fsp.mkdir(tmp, { recursive: true });
    try {
      await fsp.writeFile(path.join(tmp, OWNED), '');
      for (const f of files) await this.download(f, path.join(tmp, f.name));
      await fsp.writeFile(path.join(tmp, '.complete'), JSON.stringify({ version, files: files.map(({ name, sha256, bytes }) => ({ name, sha256, bytes })) }));
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.rename(tmp, dir); // the directory appears whole or not at all
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
    for (const a of this.desired.adapters) if (a.version === version) this.mark(a.name, 'ready');
  }

  async download(file, target) {
    const res = await fetch(file.url, { signal: AbortSignal.timeout(this.config.httpTimeoutMs) });
    if (!res.ok || !res.body) throw new Error(`${file.name}: HTTP ${res.status}`);
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    const out = fs.createWriteStream(target);
    try {
      for await (const chunk of res.body) {
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes > file.bytes) throw new Error(`${file.name}: more than the announced ${file.bytes} bytes`);
        if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      }
    } finally {
      await new Promise((r) => out.end(r));
    }
    const sha = hash.digest('hex');
    if (bytes !== file.bytes || sha !== file.sha256) throw new Error(`${file.name}: got ${bytes} bytes with sha256 ${sha}, expected ${file.bytes} bytes with ${file.sha256}`);
  }

  /** name -> lora_path of every adapter card vLLM lists (cards with a parent are adapters; the base has none). */
  async loadedAdapters() {
    const res = await fetch(`${this.config.vllmUrl}/v1/models`, { headers: this.vllmHeaders(), signal: AbortSignal.timeout(this.config.httpTimeoutMs) });
    if (!res.ok) throw new Error(`GET /v1/models answered ${res.status}`);
    const body = await res.json();
    return new Map((body.data || []).filter((m) => m.parent).map((m) => [m.id, m.root]));
  }

  async vllmPost(route, body) {
    try {
      const res = await fetch(`${this.config.vllmUrl}${route}`, {
        method: 'POST',
        headers: { ...this.vllmHeaders(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.config.httpTimeoutMs),
      });
      // Success is plain text; errors are JSON {error:{message,...}} (or FastAPI's {detail} for a missing route).
      const text = await res.text();
      let message = text;
      try {
        const j = JSON.parse(text);
        message = (j.error && j.error.message) || j.detail || text;
      } catch {
        // plain text
      }
      return { status: res.status, message };
    } catch (err) {
      return { status: 0, message: err.message };
    }
  }

  vllmHeaders() {
    return this.config.vllmApiKey ? { authorization: `Bearer ${this.config.vllmApiKey}` } : {};
  }
}

function createAgentServer(agent) {
  const token = Buffer.from(agent.config.token);
  const authorized = (req) => {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    if (!m) return false;
    const given = Buffer.from(m[1]);
    return given.length === token.length && crypto.timingSafeEqual(given, token);
  };
  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  return http.createServer(async (req, res) => {
    const route = `${req.method} ${req.url.split('?')[0]}`;
    if (route === 'GET /healthz') return send(res, 200, { status: 'ok' });
    if (!authorized(req)) return send(res, 401, { error: { message: 'missing or wrong agent token', code: 'unauthorized' } });
    try {
      if (route === 'GET /v1/status') return send(res, 200, agent.report());
      if (route === 'PUT /v1/desired') {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          throw fieldError('body', 'is not valid JSON');
        }
        agent.setDesired(parseDesired(body));
        return send(res, 202, { generation: agent.desired.generation });
      }
      return send(res, 404, { error: { message: `no route ${route}`, code: 'not_found' } });
    } catch (err) {
      if (err.status === 400) return send(res, 400, { error: { message: err.message, param: err.field ?? null, code: 'invalid_request' } });
      agent.log({ level: 'error', msg: 'request failed', error: String(err && err.message) });
      return send(res, 500, { error: { message: 'internal error', code: 'internal' } });
    }
  });
}

async function exists(p) {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

module.exports = { Agent, createAgentServer, loadConfig, parseDesired };

if (require.main === module) {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`loraplane agent: ${err.message}\n`);
    process.exit(78);
  }
  fs.mkdirSync(config.adapterDir, { recursive: true });
  const agent = new Agent(config);
  const server = createAgentServer(agent);
  server.listen(config.port, config.host, () => agent.log({ level: 'info', msg: 'agent listening', port: server.address().port, vllm: config.vllmUrl }));
  agent.start();
  const stop = () => agent.stop().then(() => server.close(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
