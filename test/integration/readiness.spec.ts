import { startTestApp, TestApp } from '../support/app';

/** /readyz checks each dependency for real and names what is down; /healthz only says the process answers. */
describe('health and readiness (integration)', () => {
  let healthy: TestApp;

  afterEach(async () => {
    await healthy?.close();
  });

  it('is ready when Postgres, Redis, S3 and Docker all answer', async () => {
    healthy = await startTestApp();
    const res = await fetch(`${healthy.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ready',
      down: [],
      checks: { postgres: { status: 'up' }, redis: { status: 'up' }, s3: { status: 'up' }, docker: { status: 'up' } },
    });
    expect(await (await fetch(`${healthy.url}/healthz`)).json()).toEqual({ status: 'ok' });
  });

  it('answers 503 naming Docker when the engine is unreachable, with an error id and no driver text, while still alive', async () => {
    // api + worker in one process, pointed at a socket that does not exist.
    healthy = await startTestApp({ LORAPLANE_ROLE: 'all', DOCKER_SOCKET: '/nonexistent/docker.sock' });
    const res = await fetch(`${healthy.url}/readyz`);
    expect(res.status).toBe(503);
    const text = await res.text();
    const body = JSON.parse(text) as { status: string; down: string[]; checks: Record<string, { status: string; error_id?: string }> };
    expect(body.status).toBe('unavailable');
    expect(body.down).toEqual(['docker']);
    expect(body.checks.docker).toEqual({ status: 'down', error_id: expect.stringMatching(/^err_\w+$/) });
    expect(text).not.toMatch(/ENOENT|nonexistent|sock/);
    expect((await fetch(`${healthy.url}/healthz`)).status).toBe(200);
  });

  it('does not check (nor need) a Docker engine in an api-only process', async () => {
    healthy = await startTestApp({ LORAPLANE_ROLE: 'api', DOCKER_SOCKET: '/nonexistent/docker.sock' });
    const res = await fetch(`${healthy.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ready',
      down: [],
      checks: { postgres: { status: 'up' }, redis: { status: 'up' }, s3: { status: 'up' } },
    });
  });

  it('names Redis when it is unreachable', async () => {
    healthy = await startTestApp({ LORAPLANE_ROLE: 'api', REDIS_URL: 'redis://127.0.0.1:1/0' });
    const res = await fetch(`${healthy.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { down: string[] };
    expect(body.down).toEqual(['redis']);
  });
});
