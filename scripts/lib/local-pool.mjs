// The dev stack's serving pool `local`: replicas of the tiny vLLM-compatible server (jobs/tiny-lora/server.js), each
// with the real adapter agent beside it (adapters/agent/agent.js), started and restarted by `npm run dev`, and
// registered through the API as pool `local` with auto_deploy, so a succeeded tiny-lora job is callable by its
// fine_tuned_model without another call. Agent tokens and adapter files live in .data/local-pool (kept across runs).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, probe, timeoutMs = 20_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** Runs a process and starts it again whenever it exits, until `stop`. Its output goes to a log file. */
function supervise(name, args, env, logFile, log) {
  let child = null;
  let stopping = false;
  const startOne = () => {
    const out = fs.openSync(logFile, 'a');
    child = spawn(process.execPath, args, { env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.on('exit', (code, signal) => {
      if (stopping) return;
      log(`${name} exited (${signal ?? code}); restarting it`);
      setTimeout(startOne, 1000).unref();
    });
  };
  startOne();
  return {
    stop() {
      stopping = true;
      child?.kill('SIGTERM');
    },
  };
}

function tokens(dir, names) {
  const file = path.join(dir, 'tokens.json');
  const saved = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  for (const n of names) saved[n] ??= `local-agent-${randomBytes(16).toString('hex')}`;
  fs.writeFileSync(file, JSON.stringify(saved, null, 2), { mode: 0o600 });
  return saved;
}

/**
 * Starts `replicas` replicas (vLLM on basePort + 2i, agent on basePort + 2i + 1) and registers pool `local` with
 * them through the API at `apiUrl` (once it answers). Returns a stop function.
 */
export async function startLocalPool({ root, dataDir, apiUrl, apiKey, replicas = 2, basePort = 8101, log }) {
  const dir = path.join(dataDir, 'local-pool');
  fs.mkdirSync(dir, { recursive: true });
  const names = Array.from({ length: replicas }, (_, i) => `local-${i}`);
  const secret = tokens(dir, names);
  const running = [];
  const members = names.map((name, i) => {
    const vllmUrl = `http://127.0.0.1:${basePort + 2 * i}`;
    const agentUrl = `http://127.0.0.1:${basePort + 2 * i + 1}`;
    const adapterDir = path.join(dir, name);
    fs.mkdirSync(adapterDir, { recursive: true });
    const logFile = path.join(dir, `${name}.log`);
    running.push(supervise(`${name} (tiny server)`, [path.join(root, 'jobs/tiny-lora/server.js'), '--port', String(basePort + 2 * i), '--host', '127.0.0.1', '--enable-lora', '--max-loras', '4', '--max-lora-rank', '8'], { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' }, logFile, log));
    running.push(supervise(`${name} (agent)`, [path.join(root, 'adapters/agent/agent.js')], { ...process.env, AGENT_TOKEN: secret[name], AGENT_HOST: '127.0.0.1', AGENT_PORT: String(basePort + 2 * i + 1), VLLM_URL: vllmUrl, ADAPTER_DIR: adapterDir }, logFile, log));
    return { name, vllmUrl, agentUrl, token: secret[name] };
  });
  const stop = () => running.forEach((r) => r.stop());
  try {
    for (const m of members) {
      await until(`${m.name}'s tiny server`, () => fetch(`${m.vllmUrl}/health`).then((r) => r.ok));
      await until(`${m.name}'s agent`, () => fetch(`${m.agentUrl}/healthz`).then((r) => r.ok));
    }
    await until('the API', () => fetch(`${apiUrl}/healthz`).then((r) => r.ok), 120_000);
    const call = async (method, route, body) => {
      const res = await fetch(`${apiUrl}/v1${route}`, { method, headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    };
    let pool = await call('GET', '/serving/pools/local');
    if (pool.status === 404) {
      pool = await call('POST', '/serving/pools', { name: 'local', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4, auto_deploy: true });
      if (pool.status !== 201) throw new Error(`could not create pool 'local': ${JSON.stringify(pool.body)}`);
    }
    const known = new Set(pool.body.replicas.map((r) => r.name));
    for (const m of members.filter((m) => !known.has(m.name))) {
      const res = await call('POST', '/serving/pools/local/replicas', { name: m.name, vllm_url: m.vllmUrl, agent_url: m.agentUrl, agent_token: m.token });
      if (res.status !== 201) throw new Error(`could not register ${m.name}: ${JSON.stringify(res.body)}`);
    }
    // Every 0.5 s: each look is a line of the app's access log, and the replicas take a few seconds to report ready.
    await until("pool 'local' ready", async () => (await call('GET', '/serving/pools/local')).body.replicas.every((r) => r.status === 'ready'), 30_000, 500);
  } catch (err) {
    stop();
    throw err;
  }
  return { members, stop };
}
