import { PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, createAgentServer, loadConfig, parseDesired } from '../../adapters/agent/agent';
import { createServer, parseArgs } from '../../jobs/tiny-lora/server';
import { adapterFiles, examplesFromJsonl, train } from '../../jobs/tiny-lora/trainer';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { requireEnv, testS3, waitFor } from '../support/app';

/**
 * The agent beside a (tiny, vLLM-compatible) server: desired adapters arrive as presigned S3 URLs, are verified,
 * loaded under immutable names, an alias is re-pointed in place, a server that restarts empty is refilled by the
 * periodic sync, and files nothing uses any more are collected.
 */
describe('adapter agent (integration)', () => {
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-'));
  const adapterDir = path.join(root, 'adapters');
  const token = 'agent-token-0123456789';
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 300, nHeldOut: 40, seed: 5 });
  let vllm: ReturnType<typeof createServer>;
  let vllmPort = 0;
  let agent: Agent;
  let agentServer: ReturnType<typeof createAgentServer>;
  let agentUrl: string;
  const versions: Record<string, { name: string; url: string; sha256: string; bytes: number }[]> = {};

  async function startVllm() {
    vllm = createServer(parseArgs(['--enable-lora', '--max-lora-rank', '16']), { VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' });
    await new Promise<void>((r) => vllm.listen(vllmPort, '127.0.0.1', r));
    vllmPort = (vllm.address() as AddressInfo).port;
  }
  async function publish(version: string, seed: number, epochs: number) {
    const trained = await train(examplesFromJsonl(trainJsonl), { seed, n_epochs: epochs, batch_size: 8, learning_rate: 0.05, lora: { r: 8, alpha: 16, dropout: 0 } });
    versions[version] = [];
    for (const f of adapterFiles(trained, { r: 8, alpha: 16, dropout: 0 })) {
      const key = `agent-test/${version}/${f.name}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: f.data }));
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 });
      versions[version].push({ name: f.name, url, sha256: createHash('sha256').update(f.data).digest('hex'), bytes: f.data.length });
    }
  }
  const put = (body: unknown, auth = token) =>
    fetch(`${agentUrl}/v1/desired`, { method: 'PUT', headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const loaded = async () =>
    ((await (await fetch(`http://127.0.0.1:${vllmPort}/v1/models`)).json()) as { data: { id: string; root: string; parent: string | null }[] }).data.filter((m) => m.parent);
  const status = async () => (await (await fetch(`${agentUrl}/v1/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { adapters: { name: string; state: string; error?: string }[] };
  const ask = async (model: string, messages: unknown) => {
    const res = await fetch(`http://127.0.0.1:${vllmPort}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages, temperature: 0 }) });
    return ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content;
  };

  beforeAll(async () => {
    await publish('tickets@1', 1, 1);
    await publish('tickets@2', 2, 4);
    await startVllm();
    agent = new Agent(loadConfig({ AGENT_TOKEN: token, VLLM_URL: `http://127.0.0.1:${vllmPort}`, ADAPTER_DIR: adapterDir, SYNC_INTERVAL_MS: '200' }), () => undefined);
    fs.mkdirSync(adapterDir, { recursive: true });
    fs.mkdirSync(path.join(adapterDir, 'operator-notes'));
    fs.writeFileSync(path.join(adapterDir, 'operator-notes', 'keep.txt'), 'mine');
    agentServer = createAgentServer(agent);
    await new Promise<void>((r) => agentServer.listen(0, '127.0.0.1', r));
    agentUrl = `http://127.0.0.1:${(agentServer.address() as AddressInfo).port}`;
    agent.start();
  });
  afterAll(async () => {
    await agent.stop();
    await new Promise((r) => agentServer.close(r));
    await new Promise((r) => vllm.close(r));
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('refuses requests without the token and names the bad field of a desired state', async () => {
    expect((await put({ generation: 1, adapters: [] }, 'wrong-token-0000000000')).status).toBe(401);
    const bad = await put({ generation: 1, adapters: [{ name: 'x', version: 'x@1', files: [{ name: 'adapter_config.json', url: 'http://a', sha256: 'nothex', bytes: 1 }] }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('adapters[0].files[0].sha256');
    expect(() => parseDesired({ generation: 1, adapters: [{ name: 'a', version: 'v@1', files: [{ name: 'w.bin', url: 'http://x', sha256: 'a'.repeat(64), bytes: 1 }] }] })).toThrow(/adapter_config.json/);
  });

  it('downloads, verifies and loads a version and an alias pointing at it', async () => {
    expect((await put({ generation: 1, adapters: [{ name: 'tickets@1', version: 'tickets@1', files: versions['tickets@1'] }, { name: 'tickets', version: 'tickets@1', files: versions['tickets@1'] }] })).status).toBe(202);
    await waitFor('both loaded', async () => (await loaded()).length === 2, 10_000, 50);
    const cards = await loaded();
    const v1dir = path.join(adapterDir, 'tickets@1');
    expect(cards.map((c) => [c.id, c.root]).sort()).toEqual([['tickets', v1dir], ['tickets@1', v1dir]]);
    expect((await status()).adapters.map((a) => a.state)).toEqual(['loaded', 'loaded']);
    expect(fs.readdirSync(v1dir).sort()).toEqual(['.complete', '.loraplane-agent', 'adapter_config.json', 'adapter_model.safetensors']);
  });

  it('re-points the alias in place to a new version, unloads the old one and collects its files', async () => {
    await put({ generation: 2, adapters: [{ name: 'tickets@2', version: 'tickets@2', files: versions['tickets@2'] }, { name: 'tickets', version: 'tickets@2', files: versions['tickets@2'] }] });
    const v2dir = path.join(adapterDir, 'tickets@2');
    await waitFor('alias on v2', async () => {
      const cards = await loaded();
      return cards.length === 2 && cards.every((c) => c.root === v2dir);
    }, 10_000, 50);
    await waitFor('v1 files collected', async () => !fs.existsSync(path.join(adapterDir, 'tickets@1')), 5_000, 50);
    // Only directories the agent made are collected: a foreign one in ADAPTER_DIR survives every sync.
    expect(fs.readFileSync(path.join(adapterDir, 'operator-notes', 'keep.txt'), 'utf8')).toBe('mine');
    expect(fs.existsSync(path.join(v2dir, '.loraplane-agent'))).toBe(true);
    // The alias now answers like v2 (a different adapter than v1 at the same name).
    const sample = heldOut.slice(0, 20).map((e) => e.messages.slice(0, 2));
    const viaAlias = await Promise.all(sample.map((m) => ask('tickets', m)));
    const viaV2 = await Promise.all(sample.map((m) => ask('tickets@2', m)));
    expect(viaAlias).toEqual(viaV2);
    // A stale generation is refused.
    expect((await put({ generation: 1, adapters: [] })).status).toBe(400);
  });

  it('refills a vLLM that restarted empty, without being asked', async () => {
    // A process that dies drops its connections too; close() alone would leave idle keep-alive sockets open.
    vllm.closeAllConnections();
    await new Promise((r) => vllm.close(r));
    await startVllm(); // same port, nothing loaded
    // Asked over a new connection: pooled sockets of this test process still point at the old server.
    const fresh = await new Promise<string>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: vllmPort, path: '/v1/models', agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c)).on('end', () => resolve(body));
      }).on('error', reject),
    );
    expect((JSON.parse(fresh) as { data: { parent: string | null }[] }).data.filter((m) => m.parent)).toEqual([]);
    const t0 = Date.now();
    await waitFor('refill', async () => (await loaded().catch(() => [])).length === 2, 15_000, 50);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('never loads a file whose sha256 does not match', async () => {
    const tampered = versions['tickets@1'].map((f) => (f.name === 'adapter_model.safetensors' ? { ...f, sha256: 'f'.repeat(64) } : f));
    await put({ generation: 3, adapters: [{ name: 'tickets@2', version: 'tickets@2', files: versions['tickets@2'] }, { name: 'evil@1', version: 'evil@1', files: tampered }] });
    await waitFor('the error to show', async () => (await status()).adapters.find((a) => a.name === 'evil@1')?.state === 'error', 10_000, 50);
    const evil = (await status()).adapters.find((a) => a.name === 'evil@1')!;
    expect(evil.error).toMatch(/sha256/);
    expect((await loaded()).map((c) => c.id)).not.toContain('evil@1');
    expect(fs.readdirSync(adapterDir).filter((d) => d.startsWith('evil'))).toEqual([]);
  });
});
