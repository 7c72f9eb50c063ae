import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { newId } from '../../src/common/ids';
import { PrismaService } from '../../src/db/prisma.service';
import { adapterFiles, examplesFromJsonl, initLora, train } from '../../jobs/tiny-lora/trainer';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { ask, loadedOn, startReplica, stopAllReplicas, TestReplica } from '../support/replicas';

/**
 * Serving end to end: the control plane (api + worker with its reconciler) drives three replicas, each a separate
 * tiny vLLM-compatible server with the real adapter agent beside it. Deploy, roll out, canary, promote, roll back,
 * a replica killed and restarted, an incompatible adapter refused before anything reaches a replica, a corrupted
 * download refused by the agent, the no-effect check, history and tenancy.
 */
describe('serving pools, aliases and the reconciler (e2e)', () => {
  jest.setTimeout(60_000);
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 300, nHeldOut: 40, seed: 11 });
  const prompts = heldOut.slice(0, 20).map((e) => e.messages.slice(0, 2));
  const lora = { r: 8, alpha: 16, dropout: 0 };
  let app: TestApp;
  /** This suite's own project (the bootstrap key's project is shared with other suites). */
  let key: string;
  let prisma: PrismaService;
  let projectId: string;
  let keyId: string;
  let replicas: TestReplica[] = [];

  const api = async (method: string, route: string, body?: unknown, as = key) => {
    const res = await fetch(`${app.url}/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${as}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const pool = async () => (await api('GET', '/serving/pools/tickets-pool')).body;

  /** Registers a version the way the registry stores one (files under the adapter's prefix, sha256 of each). */
  async function seedVersion(adapter: string, files: { name: string; data: Buffer }[], config: Record<string, unknown>) {
    const row = await prisma.adapter.upsert({ where: { projectId_name: { projectId, name: adapter } }, update: {}, create: { id: newId.adapter(), projectId, name: adapter } });
    const last = await prisma.adapterVersion.count({ where: { adapterId: row.id } });
    const id = newId.adapterVersion();
    const prefix = `projects/${projectId}/adapters/${row.id}/${id}/`;
    for (const f of files) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + f.name, Body: f.data }));
    await prisma.adapterVersion.create({
      data: {
        id, adapterId: row.id, projectId, version: last + 1, s3Prefix: prefix, source: 'import', importedFrom: 'test',
        files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex') })),
        peftConfig: config as object, baseModel: String(config.base_model_name_or_path), rank: Number(config.r), targetModules: config.target_modules as string[],
      },
    });
    return prefix;
  }
  const configOf = (files: { name: string; data: Buffer }[]) => JSON.parse(files.find((f) => f.name === 'adapter_config.json')!.data.toString()) as Record<string, unknown>;
  const aliasRoots = async () => Promise.all(replicas.map(async (r) => (await loadedOn(r)).get('tickets')?.split('/').pop() ?? null));

  beforeAll(async () => {
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '500', AGENT_TIMEOUT_MS: '3000' });
    prisma = app.started.app.get(PrismaService);
    const created = (await api('POST', '/admin/projects', { name: 'serving e2e' }, app.apiKey)).body;
    key = created.api_key.value;
    projectId = created.id;
    keyId = (await prisma.apiKey.findFirstOrThrow({ where: { projectId } })).id;
    replicas = await Promise.all(['r0', 'r1', 'r2'].map((n) => startReplica(n)));
    const examples = examplesFromJsonl(trainJsonl);
    const v1 = adapterFiles(await train(examples, { seed: 1, n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora }), lora);
    const v2 = adapterFiles(await train(examples, { seed: 2, n_epochs: 4, batch_size: 8, learning_rate: 0.05, lora }), lora);
    await seedVersion('tickets', v1, configOf(v1));
    await seedVersion('tickets', v2, configOf(v2));
    // Rank 16 on a pool limited to 8: the preflight must refuse it.
    const wideLora = { r: 16, alpha: 32, dropout: 0 };
    const wide = adapterFiles(await train(examples.slice(0, 40), { seed: 3, n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora: wideLora }), wideLora);
    await seedVersion('wide', wide, configOf(wide));
    // PEFT's initialisation (B = 0): loads fine and changes nothing, which the no-effect check must notice.
    const init = initLora(lora.r, 4);
    const noop = adapterFiles({ ...init, r: lora.r, alpha: lora.alpha, scale: lora.alpha / lora.r } as never, lora);
    await seedVersion('noop', noop, configOf(noop));
    // Registered with the right sha256, then its bytes change in storage: the agent must refuse the download.
    const brokenPrefix = await seedVersion('broken', v1, configOf(v1));
    const tampered = Buffer.from(v1[1].data);
    tampered[tampered.length - 1] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${brokenPrefix}adapter_model.safetensors`, Body: tampered }));
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
  });

  it('creates a pool, names a bad field, and registers replicas whose tokens never come back', async () => {
    const bad = await api('POST', '/serving/pools', { name: 'x', base_model: 'tiny-lora', max_lora_rank: 7 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('max_lora_rank');
    const created = await api('POST', '/serving/pools', { name: 'tickets-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ served_model_name: 'tiny-lora', supported_targets: ['lm_head'], max_cpu_loras: 4 });
    for (const r of replicas) {
      const res = await api('POST', '/serving/pools/tickets-pool/replicas', { name: r.name, vllm_url: r.vllmUrl, agent_url: r.agentUrl, agent_token: r.token });
      expect(res.status).toBe(201);
    }
    const short = await api('POST', '/serving/pools/tickets-pool/replicas', { name: 'r9', vllm_url: 'http://127.0.0.1:1', agent_url: 'http://127.0.0.1:2', agent_token: 'short' });
    expect(short.body.error.param).toBe('agent_token');
    await waitFor('replicas ready', async () => (await pool()).replicas.every((r: { status: string }) => r.status === 'ready'), 15_000, 100);
    const text = JSON.stringify(await pool());
    for (const r of replicas) expect(text).not.toContain(r.token);
    const row = await prisma.replica.findFirstOrThrow({ where: { name: 'r0', projectId } });
    expect(row.agentTokenSealed).not.toContain(replicas[0].token);
  });

  it('rolls an alias out to every replica; the alias answers exactly like its version and unlike the base model', async () => {
    const res = await api('POST', '/serving/pools/tickets-pool/aliases/tickets/rollout', { version: 1, reason: 'first release' });
    expect(res.status).toBe(200);
    await waitFor('v1 everywhere', async () => (await aliasRoots()).every((d) => d === 'tickets@v1'), 15_000, 100);
    // The agent loads the version's card and re-points the alias one after the other: wait for both, not just the alias.
    for (const r of replicas) await waitFor(`${r.name}: tickets and tickets@v1`, async () => JSON.stringify([...(await loadedOn(r)).keys()].sort()) === JSON.stringify(['tickets', 'tickets@v1']), 5_000, 50);
    const viaAlias = await Promise.all(prompts.map((m) => ask(replicas[1], 'tickets', m)));
    expect(viaAlias).toEqual(await Promise.all(prompts.map((m) => ask(replicas[1], 'tickets@v1', m))));
    const viaBase = await Promise.all(prompts.map((m) => ask(replicas[1], 'tiny-lora', m)));
    expect(viaAlias).not.toEqual(viaBase);
    const view = (await api('GET', '/serving/pools/tickets-pool/aliases/tickets')).body;
    await waitFor('states reported', async () => (await api('GET', '/serving/pools/tickets-pool/aliases/tickets')).body.replicas.every((r: { state: string }) => r.state === 'loaded'), 10_000, 100);
    expect(view).toMatchObject({ adapter: 'tickets', version: 1, canary: null });
  });

  it('canaries v2 on one of three replicas, then promotes it to all', async () => {
    expect((await api('POST', '/serving/pools/tickets-pool/aliases/tickets/canary', { version: 2, replicas: 3 })).body.error.param).toBe('replicas');
    const res = await api('POST', '/serving/pools/tickets-pool/aliases/tickets/canary', { version: 2, replicas: 1, reason: 'try v2 on a third' });
    expect(res.status).toBe(200);
    expect(res.body.canary).toEqual({ version: 2, by: 'replicas', replicas: 1, request_share: null });
    await waitFor('canary split', async () => JSON.stringify(await aliasRoots()) === JSON.stringify(['tickets@v2', 'tickets@v1', 'tickets@v1']), 15_000, 100);
    const onCanary = await Promise.all(prompts.map((m) => ask(replicas[0], 'tickets', m)));
    expect(onCanary).toEqual(await Promise.all(prompts.map((m) => ask(replicas[0], 'tickets@v2', m))));
    expect(onCanary).not.toEqual(await Promise.all(prompts.map((m) => ask(replicas[2], 'tickets', m))));
    expect((await api('POST', '/serving/pools/tickets-pool/aliases/tickets/promote', { reason: 'canary looks good' })).status).toBe(200);
    await waitFor('v2 everywhere', async () => (await aliasRoots()).every((d) => d === 'tickets@v2'), 15_000, 100);
  });

  it('rolls back in one call, at once, and keeps a history of who moved the alias, when, from, to and why', async () => {
    const t0 = Date.now();
    const res = await api('POST', '/serving/pools/tickets-pool/aliases/tickets/rollback', { reason: 'v2 misroutes refunds' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 1, previous_version: 2 });
    await waitFor('v1 everywhere again', async () => (await aliasRoots()).every((d) => d === 'tickets@v1'), 15_000, 50);
    // Both versions stayed on every replica, so each re-points the name in place: no download, no waiting for a tick.
    expect(Date.now() - t0).toBeLessThan(3000);
    const history = (await api('GET', '/serving/pools/tickets-pool/aliases/tickets/history')).body.data as Record<string, unknown>[];
    expect(history.map((h) => [h.action, h.from_version, h.to_version, h.reason])).toEqual([
      ['rollback', 2, 1, 'v2 misroutes refunds'],
      ['promote', 1, 2, 'canary looks good'],
      ['canary', 1, 2, 'try v2 on a third'],
      ['rollout', null, 1, 'first release'],
    ]);
    expect(history.every((h) => h.actor === keyId && typeof h.created_at === 'number')).toBe(true);
  });

  it('canaries by requests: the alias keeps v1 on every replica, v2 is loaded by its immutable name, the history records the share', async () => {
    const path = '/serving/pools/tickets-pool/aliases/tickets';
    expect((await api('POST', `${path}/canary`, { version: 2, replicas: 1, request_share: 10 })).body.error.param).toBe('request_share');
    expect((await api('POST', `${path}/canary`, { version: 2 })).body.error.param).toBe('replicas');
    expect((await api('POST', `${path}/canary`, { version: 2, request_share: 101 })).body.error.param).toBe('request_share');
    const res = await api('POST', `${path}/canary`, { version: 2, request_share: 30, reason: 'a third of the users' });
    expect(res.status).toBe(200);
    expect(res.body.canary).toEqual({ version: 2, by: 'requests', replicas: 0, request_share: 30 });
    await waitFor('v2 loaded by name everywhere', async () => (await api('GET', path)).body.replicas.every((r: { canary_state: string }) => r.canary_state === 'loaded'), 15_000, 100);
    expect(await aliasRoots()).toEqual(['tickets@v1', 'tickets@v1', 'tickets@v1']);
    expect((await api('POST', `${path}/rollback`, { reason: 'called off' })).body).toMatchObject({ version: 1, canary: null });
    expect((await api('POST', `${path}/canary`, { version: 2, request_share: 50 })).status).toBe(200);
    expect((await api('POST', `${path}/promote`, { reason: 'half the users liked it' })).body).toMatchObject({ version: 2, canary: null });
    await waitFor('v2 everywhere', async () => (await aliasRoots()).every((d) => d === 'tickets@v2'), 15_000, 100);
    expect((await api('POST', `${path}/rollback`, { reason: 'back to v1' })).body).toMatchObject({ version: 1, previous_version: 2 });
    await waitFor('v1 everywhere again', async () => (await aliasRoots()).every((d) => d === 'tickets@v1'), 15_000, 50);
    const history = (await api('GET', `${path}/history`)).body.data as Record<string, unknown>[];
    expect(history.slice(0, 5).map((h) => [h.action, h.from_version, h.to_version, h.canary_replicas, h.canary_request_share])).toEqual([
      ['rollback', 2, 1, null, null],
      ['promote', 1, 2, null, null],
      ['canary', 1, 2, null, 50],
      ['rollback', 2, 1, null, null],
      ['canary', 1, 2, null, 30],
    ]);
  });

  it('refuses an incompatible adapter before anything reaches a replica', async () => {
    const res = await api('POST', '/serving/pools/tickets-pool/deployments', { adapter: 'wide', version: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'incompatible_adapter', param: 'version' });
    expect(res.body.error.message).toMatch(/r=16 exceeds the pool's max_lora_rank 8/);
    const rollout = await api('POST', '/serving/pools/tickets-pool/aliases/wide/rollout', { version: 1 });
    expect(rollout.body.error.code).toBe('incompatible_adapter');
    await new Promise((r) => setTimeout(r, 1000)); // a reconcile pass or two
    const statuses = await Promise.all(replicas.map(async (r) => (await fetch(`${r.agentUrl}/v1/status`, { headers: { authorization: `Bearer ${r.token}` } })).json()));
    expect(JSON.stringify(statuses)).not.toContain('wide');
  });

  it('refills a replica whose vLLM and agent were killed and restarted, within 15 s', async () => {
    const r2 = replicas[2];
    await Promise.all([r2.killVllm(), r2.killAgent()]);
    await waitFor('r2 unreachable', async () => (await pool()).replicas.find((r: { name: string }) => r.name === 'r2').status === 'unreachable', 10_000, 100);
    const t0 = Date.now();
    await r2.startVllm();
    await r2.startAgent();
    expect((await loadedOn(r2)).size).toBe(0);
    await waitFor('r2 refilled', async () => (await loadedOn(r2)).get('tickets')?.endsWith('tickets@v1'), 15_000, 100);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The alias may be back before the other deployed version's card: wait for the full set.
    await waitFor('r2 has every deployed version', async () => JSON.stringify([...(await loadedOn(r2)).keys()].sort()) === JSON.stringify(['tickets', 'tickets@v1', 'tickets@v2']), 15_000, 100);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('a corrupted download (sha256 mismatch) is refused by every agent and never loaded', async () => {
    expect((await api('POST', '/serving/pools/tickets-pool/deployments', { adapter: 'broken', version: 1 })).status).toBe(201);
    await waitFor('refusal reported', async () => {
      const p = await pool();
      return p.replicas.every((r: { adapters: { name: string; state: string; error: string | null }[] }) =>
        r.adapters.some((a) => a.name === 'broken@v1' && a.state === 'error' && /sha256/.test(a.error ?? '')));
    }, 15_000, 100);
    for (const r of replicas) expect((await loadedOn(r)).has('broken@v1')).toBe(false);
    expect((await api('DELETE', '/serving/pools/tickets-pool/deployments/broken/1')).status).toBe(200);
  });

  it('warns when a loaded adapter changes nothing (no-effect check), and not when it does', async () => {
    expect((await api('POST', '/serving/pools/tickets-pool/deployments', { adapter: 'noop', version: 1 })).status).toBe(201);
    const deployments = await waitFor('noop probed', async () => {
      const d = (await pool()).deployments as { served_name: string; warning: string | null; probe: { identical: boolean } | null }[];
      return d.find((x) => x.served_name === 'noop@v1')?.probe ? d : null;
    }, 15_000, 100);
    expect(deployments.find((x) => x.served_name === 'noop@v1')).toMatchObject({ probe: { identical: true }, warning: expect.stringMatching(/no effect/) });
    expect(deployments.find((x) => x.served_name === 'tickets@v1')).toMatchObject({ probe: { identical: false }, warning: null });
  });

  it('refuses to undeploy what the alias serves, and keeps other tenants out', async () => {
    const res = await api('DELETE', '/serving/pools/tickets-pool/deployments/tickets/1');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('version_in_use');
    const other = await api('POST', '/admin/projects', { name: 'serving tenant B' }, app.apiKey);
    const keyB = other.body.api_key.value as string;
    expect((await api('GET', '/serving/pools/tickets-pool', undefined, keyB)).status).toBe(404);
    expect((await api('POST', '/serving/pools/tickets-pool/aliases/tickets/rollback', {}, keyB)).status).toBe(404);
    expect((await api('GET', '/serving/pools', undefined, keyB)).body.data).toEqual([]);
  });
});
