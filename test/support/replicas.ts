import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './app';

const ROOT = path.resolve(__dirname, '../..');

/**
 * A serving replica as in production, each part its own process: the tiny model's vLLM-compatible server
 * (jobs/tiny-lora/server.js) and the real adapter agent beside it (adapters/agent/agent.js), sharing an adapter
 * directory. Either can be killed (SIGKILL) and started again on the same ports.
 */
export interface TestReplica {
  name: string;
  vllmUrl: string;
  agentUrl: string;
  token: string;
  adapterDir: string;
  startVllm(): Promise<void>;
  startAgent(): Promise<void>;
  killVllm(): Promise<void>;
  killAgent(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

function kill(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Every replica started in this test process, so a suite can stop them all even when its setup failed halfway. */
const started = new Set<TestReplica>();

export async function stopAllReplicas(): Promise<void> {
  await Promise.all([...started].map((r) => r.stop()));
  started.clear();
}

export async function startReplica(name: string, opts: { maxLoraRank?: number; syncIntervalMs?: number; delayMs?: number } = {}): Promise<TestReplica> {
  const [vllmPort, agentPort] = [await freePort(), await freePort()];
  const adapterDir = fs.mkdtempSync(path.join(os.tmpdir(), `replica-${name}-`));
  const token = `agent-token-${name}-0123456789`;
  let vllm: ChildProcess | null = null;
  let agent: ChildProcess | null = null;
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'] as ('ignore' | 'inherit')[] };
  const up = (url: string) => fetch(url).then((r) => r.ok, () => false);
  const r: TestReplica = {
    name,
    vllmUrl: `http://127.0.0.1:${vllmPort}`,
    agentUrl: `http://127.0.0.1:${agentPort}`,
    token,
    adapterDir,
    async startVllm() {
      const args = ['--port', String(vllmPort), '--enable-lora', '--max-loras', '4', '--max-lora-rank', String(opts.maxLoraRank ?? 8)];
      if (opts.delayMs) args.push('--delay-ms', String(opts.delayMs));
      vllm = spawn(process.execPath, [path.join(ROOT, 'jobs/tiny-lora/server.js'), ...args], { ...quiet, env: { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' } });
      await waitFor(`${name} vLLM up`, () => up(`${r.vllmUrl}/health`), 10_000, 25);
    },
    async startAgent() {
      agent = spawn(process.execPath, [path.join(ROOT, 'adapters/agent/agent.js')], {
        ...quiet,
        env: { ...process.env, AGENT_TOKEN: token, AGENT_HOST: '127.0.0.1', AGENT_PORT: String(agentPort), VLLM_URL: r.vllmUrl, ADAPTER_DIR: adapterDir, SYNC_INTERVAL_MS: String(opts.syncIntervalMs ?? 500) },
      });
      await waitFor(`${name} agent up`, () => up(`${r.agentUrl}/healthz`), 10_000, 25);
    },
    killVllm: () => kill(vllm),
    killAgent: () => kill(agent),
    async stop() {
      await Promise.all([kill(vllm), kill(agent)]);
      fs.rmSync(adapterDir, { recursive: true, force: true });
    },
  };
  started.add(r);
  await r.startVllm();
  await r.startAgent();
  return r;
}

/** The vLLM cards of a replica: adapter name -> lora_path. A fresh connection each time (a killed server's sockets die). */
export async function loadedOn(r: TestReplica): Promise<Map<string, string>> {
  const res = await fetch(`${r.vllmUrl}/v1/models`, { headers: { connection: 'close' } });
  const body = (await res.json()) as { data: { id: string; root: string; parent: string | null }[] };
  return new Map(body.data.filter((m) => m.parent).map((m) => [m.id, m.root]));
}

export async function ask(r: TestReplica, model: string, messages: unknown): Promise<string> {
  const res = await fetch(`${r.vllmUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify({ model, messages, temperature: 0 }),
  });
  if (!res.ok) throw new Error(`${r.name}: ${model} answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content;
}
