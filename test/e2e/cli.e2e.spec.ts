import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFakeCatalog } from '../fixtures/fake-trainers';
import { makeTicketDataset } from '../fixtures/tiny-task';
import { startTestApp, TestApp } from '../support/app';
import { freePort, startReplica, stopAllReplicas, TestReplica } from '../support/replicas';

const BIN = path.resolve(__dirname, '../../bin/loraplane.js');

/**
 * The `loraplane` command as a pipeline runs it: the built CLI (bin/loraplane.js -> dist/cli) as a child process
 * without a terminal, against the real app. Checks what goes to stdout vs stderr and every documented exit code.
 */
describe('loraplane CLI (e2e)', () => {
  jest.setTimeout(120_000);
  let app: TestApp;
  let key: string;
  let replica: TestReplica;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-cli-'));

  function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { env: { ...process.env, LORAPLANE_URL: app.url, LORAPLANE_API_KEY: key, ...env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
    });
  }

  beforeAll(async () => {
    app = await startTestApp({ MODEL_CATALOG_FILE: writeFakeCatalog(), RECONCILE_INTERVAL_MS: '500' });
    // A project of its own: suites share the bootstrap key's project.
    const res = await fetch(`${app.url}/v1/admin/projects`, { method: 'POST', headers: { authorization: `Bearer ${app.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cli e2e' }) });
    key = ((await res.json()) as { api_key: { value: string } }).api_key.value;
    replica = await startReplica('cli0');
    fs.writeFileSync(path.join(dir, 'train.jsonl'), makeTicketDataset({ n: 200, seed: 3 }));
    fs.writeFileSync(path.join(dir, 'bad.jsonl'), '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"billing"}]}\n{"messages":[{"role":"bot","content":"x"}]}\nnot json\n');
  });
  afterAll(async () => {
    await stopAllReplicas();
    await app?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('validates a file as a dry run, listing errors by line, exit 2', async () => {
    const r = await cli(['datasets', 'validate', path.join(dir, 'bad.jsonl')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/line 2, messages\[0\]\.role: .*\[unknown_role\]/);
    expect(r.stdout).toMatch(/line 3: .*\[invalid_json\]/);
    const list = await cli(['datasets', 'list', '--json']);
    expect(JSON.parse(list.stdout).data).toEqual([]);
  });

  it('uploads with progress and throughput on stderr, then trains with --wait to a fine-tuned model, and registers it', async () => {
    const up = await cli(['datasets', 'upload', path.join(dir, 'train.jsonl'), '--json']);
    expect(up.code).toBe(0);
    const dataset = JSON.parse(up.stdout) as { id: string; status: string };
    expect(dataset.status).toBe('ready');
    const plain = await cli(['datasets', 'upload', path.join(dir, 'train.jsonl')]);
    expect(plain.stderr).toMatch(/uploading: [\d.]+ KiB in [\d.]+ s \([\d.]+ (KiB|MiB)\/s\)/);
    expect(plain.stdout.trim()).toMatch(new RegExp(`^${dataset.id} ready`)); // identical bytes: the same dataset

    const job = await cli(['jobs', 'create', '--model', 'tiny-lora', '--training-file', dataset.id, '--suffix', 'cli', '--wait']);
    expect(job.code).toBe(0);
    expect(job.stdout.trim()).toMatch(/^ft:tiny-lora:cli-e2e:cli:[A-Za-z0-9]+$/);
    expect(job.stderr).toMatch(/step \d+\/\d+ loss \d\.\d{4}/);
    expect(job.stderr).toMatch(/succeeded: ft:tiny-lora/);
    const jobId = /^(ftjob-\S+) created/m.exec(job.stderr)![1];
    const reg = await cli(['adapters', 'register', 'tickets', '--job', jobId]);
    expect(reg).toMatchObject({ code: 0, stdout: 'tickets@v1\n' });
    const events = await cli(['jobs', 'events', jobId]);
    expect(events.stdout).toMatch(/training loss=/);
  });

  it('exits 3 when the job fails, with its error on stderr', async () => {
    const dataset = JSON.parse((await cli(['datasets', 'upload', path.join(dir, 'train.jsonl'), '--json'])).stdout) as { id: string };
    const r = await cli(['jobs', 'create', '--model', 'fake-crash', '--training-file', dataset.id, '--wait', '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'failed', error: { code: 'trainer_exit' } });
    expect(r.stderr).toMatch(/failed: trainer_exit/);
  });

  it('drives a pool: create, add a replica, roll out, status, history', async () => {
    expect((await cli(['admin', 'pools', 'create', 'p1', '--base-model', 'tiny-lora', '--max-lora-rank', '8', '--max-loras', '2'])).code).toBe(0);
    const add = await cli(['admin', 'pools', 'add-replica', 'p1', 'cli0', '--vllm-url', replica.vllmUrl, '--agent-url', replica.agentUrl], { LORAPLANE_AGENT_TOKEN: replica.token });
    expect(add.code).toBe(0);
    expect((await cli(['adapters', 'rollout', 'p1', 'tickets', '1', '--reason', 'from the CLI'])).code).toBe(0);
    let status = '';
    for (let i = 0; i < 60 && !/cli0\s+1\s+false\s+loaded/.test(status); i++) {
      status = (await cli(['adapters', 'status', 'p1', 'tickets'])).stdout;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toMatch(/alias -> v1/);
    expect(status).toMatch(/cli0\s+1\s+false\s+loaded/);
    const history = await cli(['adapters', 'history', 'p1', 'tickets', '--json']);
    expect(JSON.parse(history.stdout).data[0]).toMatchObject({ action: 'rollout', to_version: 1, reason: 'from the CLI' });
  });

  it('lets an operator create a project, list it, and give it a key again after its keys were revoked', async () => {
    const operator = { LORAPLANE_API_KEY: app.apiKey };
    const made = await cli(['admin', 'projects', 'create', 'cli tenant', '--json'], operator);
    expect(made.code).toBe(0);
    const project = JSON.parse(made.stdout) as { id: string; api_key: { id: string; value: string } };
    const revoked = await fetch(`${app.url}/v1/admin/api_keys/${project.api_key.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${app.apiKey}` } });
    expect(revoked.status).toBe(200);
    const list = await cli(['admin', 'projects', '--limit', '100'], operator);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${project.id}\\s+cli tenant\\s+cli-tenant\\s+0\\n`));
    const added = await cli(['admin', 'projects', 'add-key', project.id, '--name', 'back in'], operator);
    expect(added.code).toBe(0);
    const value = /its value \(shown once\): (lp_\S+)/.exec(added.stdout)?.[1];
    expect((await cli(['datasets', 'list'], { LORAPLANE_API_KEY: value ?? 'none' })).code).toBe(0);
    // A project key may not; an unknown project is bad input, named.
    expect((await cli(['admin', 'projects'])).code).toBe(6);
    const unknown = await cli(['admin', 'projects', 'add-key', 'proj_nope'], operator);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/param: project_id/);
  });

  it("mints an application's inference-only key for a pipeline, lists, limits and revokes it", async () => {
    const made = await cli(['keys', 'create', '--name', 'the app', '--scopes', 'inference']);
    expect(made.code).toBe(0);
    const value = made.stdout.trim();
    expect(value).toMatch(/^lp_\S+$/); // the value alone: APP_KEY=$(loraplane keys create ...)
    const listed = await cli(['keys', '--json']);
    const row = (JSON.parse(listed.stdout) as { data: { id: string; name: string; scopes: string[] }[] }).data.find((k) => k.name === 'the app')!;
    expect(row.scopes).toEqual(['inference']);
    expect((await cli(['keys'])).stdout).toMatch(new RegExp(`${row.id}\\s+the app\\s+lp_\\S+\\s+inference`));
    // The restricted key itself may not read datasets (exit 6: the key lacks the right).
    const refused = await cli(['datasets', 'list'], { LORAPLANE_API_KEY: value });
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/may only call and list models/);
    expect((await cli(['keys', 'limits', row.id, '--rpm', '60'])).stdout.trim()).toBe('rpm 60 · tpm none');
    expect((await cli(['keys', 'revoke', row.id])).stdout.trim()).toBe(`key ${row.id} revoked`);
    const bad = await cli(['keys', 'create', '--scopes', 'admin']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/param: scopes\[0\]/);
  });

  it('has distinct exit codes for bad input, an unreachable server and a wrong key', async () => {
    expect((await cli(['jobs', 'create', '--model', 'tiny-lora'])).code).toBe(2);
    const unknownModel = await cli(['jobs', 'create', '--model', 'nope', '--training-file', 'file-x']);
    expect(unknownModel.code).toBe(2);
    expect(unknownModel.stderr).toMatch(/param: model/);
    expect((await cli(['jobs', 'list', '--bogus'])).code).toBe(2);
    expect((await cli(['no', 'such', 'command'])).code).toBe(2);
    const closed = await freePort();
    const down = await cli(['jobs', 'list'], { LORAPLANE_URL: `http://127.0.0.1:${closed}` });
    expect(down.code).toBe(5);
    expect(down.stderr).toContain(`cannot reach loraplane at http://127.0.0.1:${closed}: ECONNREFUSED`);
    expect((await cli(['jobs', 'list'], { LORAPLANE_API_KEY: 'lp_wrong_key_0000000000000' })).code).toBe(6);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/exit codes: 0 ok, 1 error, 2 bad input, 3 job failed, 4 gate not met, 5 server unreachable, 6 unauthorized/);
  });
});
