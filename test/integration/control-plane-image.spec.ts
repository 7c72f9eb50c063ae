import Docker from 'dockerode';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { requireEnv, waitFor } from '../support/app';

/**
 * The control plane's image (deploy/Dockerfile), built on a locally assembled base (no registry pulls), started
 * against the test stack: the api role serves /readyz, the migrations role applies (here: finds up to date) the
 * migrations and exits 0, the worker role answers its probes, and every role runs as a non-root user.
 * Layers are cached by the engine, so a rebuild after a source change repeats only the build stage's last steps.
 */
const TAG = `loraplane/control-plane:test-${process.env.LORAPLANE_TEST_SLOT ?? '0'}`;
const docker = new Docker({ socketPath: requireEnv('DOCKER_SOCKET') });
const started: string[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The test stack's services are on 127.0.0.1: host networking lets the container reach them as the host does. */
function stackEnv(role: string, port: number): string[] {
  const keys = ['DATABASE_URL', 'REDIS_URL', 'S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_REGION', 'QUEUE_PREFIX'];
  const env = keys.filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  return [...env, `LORAPLANE_ROLE=${role}`, `PORT=${port}`, 'HOST=127.0.0.1', `PROBE_PORT=${port}`, 'LOCAL_DOCKER_ENGINE=false',
    `SECRETS_KEY=${randomBytes(32).toString('hex')}`, `LORAPLANE_API_KEY=lp_${randomBytes(24).toString('hex')}`, 'S3_FORCE_PATH_STYLE=true', 'LOG_LEVEL=warn'];
}

async function run(role: string, port: number): Promise<Docker.Container> {
  const container = await docker.createContainer({
    Image: TAG,
    Env: stackEnv(role, port),
    Labels: { 'io.loraplane.test': 'control-plane-image' },
    HostConfig: { NetworkMode: 'host', ReadonlyRootfs: true, Tmpfs: { '/tmp': 'rw,size=64m' }, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
  });
  started.push(container.id);
  await container.start();
  return container;
}

beforeAll(async () => {
  // The same script CI and operators use (npm run image:control-plane), with this run's own tag.
  const out = spawnSync(process.execPath, ['scripts/build-control-plane-image.mjs', `--tag=${TAG}`], { cwd: `${__dirname}/../..`, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`image build failed:\n${out.stderr.slice(-4000)}`);
}, 1_200_000);

afterAll(async () => {
  for (const id of started) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
});

test('one image, non-root, every role chosen by LORAPLANE_ROLE', async () => {
  const info = await docker.getImage(TAG).inspect();
  expect(info.Config.User).toBe('10001:10001');
  expect(info.Config.Entrypoint).toEqual(['node', '/app/deploy/entrypoint.js']);

  const migrations = await run('migrations', await freePort());
  const exit = await migrations.wait();
  const logs = (await migrations.logs({ stdout: true, stderr: true })).toString('utf8');
  expect({ code: exit.StatusCode, logs }).toEqual({ code: 0, logs: expect.stringMatching(/up to date|applied/) });

  const apiPort = await freePort();
  await run('api', apiPort);
  const ready = await waitFor('the api container to be ready', async () => {
    const res = await fetch(`http://127.0.0.1:${apiPort}/readyz`).catch(() => null);
    return res?.status === 200 ? ((await res.json()) as { status: string; checks: Record<string, unknown> }) : null;
  }, 90_000, 500);
  expect(ready.status).toBe('ready');
  expect(Object.keys(ready.checks).sort()).toEqual(['postgres', 'redis', 's3']); // no Docker engine in a pod
  expect((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status).toBe(200);

  const workerPort = await freePort();
  await run('worker', workerPort);
  await waitFor('the worker probes', async () => (await fetch(`http://127.0.0.1:${workerPort}/readyz`).catch(() => null))?.status === 200, 90_000, 500);
  expect((await fetch(`http://127.0.0.1:${workerPort}/v1/models`)).status).toBe(404); // probes only, no API
});
