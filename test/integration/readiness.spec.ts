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

  it('answers 503 naming Docker when the engine is unreachable, while still alive', async () => {
    // The api role alone (no worker), pointed at a socket that does not exist.
    healthy = await startTestApp({ LORAPLANE_ROLE: 'api', DOCKER_SOCKET: '/nonexistent/docker.sock' });
    const res = await fetch(`${healthy.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; down: string[]; checks: Record<string, { status: string; error?: string }> };
    expect(body.status).toBe('unavailable');
    expect(body.down).toEqual(['docker']);
    expect(body.checks.docker.error).toMatch(/ENOENT|nonexistent/);
    expect((await fetch(`${healthy.url}/healthz`)).status).toBe(200);
  });

  it('names Redis when it is unreachable', async () => {
    healthy = await startTestApp({ LORAPLANE_ROLE: 'api', REDIS_URL: 'redis://127.0.0.1:1/0' });
    const res = await fetch(`${healthy.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { down: string[] };
    expect(body.down).toEqual(['redis']);
  });
});
