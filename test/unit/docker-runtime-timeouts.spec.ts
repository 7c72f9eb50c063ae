import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DomainError } from '../../src/common/domain-error';
import { Config } from '../../src/config/config';
import { DockerRuntime } from '../../src/training/runtime/docker-runtime';

/**
 * An engine that accepts connections and never answers (a wedged dockerd, a proxy that lost its upstream) must not
 * hold a worker's task forever: every call gives up at DOCKER_CALL_TIMEOUT_MS with a retryable 503-class error that
 * names the call; a stop gets the grace period on top, since Docker answers it only once the container is gone.
 */
describe('DockerRuntime time limits', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-silent-docker-'));
  const socketPath = path.join(dir, 'docker.sock');
  const sockets: net.Socket[] = [];
  let silent: net.Server;
  let runtime: DockerRuntime;
  const TIMEOUT_MS = 300;

  beforeAll(async () => {
    silent = net.createServer((s) => sockets.push(s)); // read nothing, write nothing
    await new Promise<void>((r) => silent.listen(socketPath, r));
    const config = Config.fromEnv({
      DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1', S3_BUCKET: 'bucket', LORAPLANE_MODE: 'dev', LOG_LEVEL: 'silent',
      DOCKER_CALL_TIMEOUT_MS: String(TIMEOUT_MS),
    });
    runtime = new DockerRuntime(config, 'silent', { url: `unix://${socketPath}` });
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => silent.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const timed = async (call: () => Promise<unknown>) => {
    const t0 = Date.now();
    const err = await call().then(() => null, (e: unknown) => e);
    return { err, ms: Date.now() - t0 };
  };

  it.each([
    ['ping', () => runtime.ping()],
    ['list containers', () => runtime.find('ftjob-x', 1)],
    ['remove container', () => runtime.remove('c0ffee')],
  ])('gives up on %s after DOCKER_CALL_TIMEOUT_MS with a retryable error naming it', async (action, call) => {
    const connectionsBefore = sockets.length;
    const { err, ms } = await timed(call);
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ code: 'service_unavailable', message: expect.stringContaining(`no answer to ${action} within ${TIMEOUT_MS} ms`) });
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(ms).toBeLessThan(TIMEOUT_MS + 2000);
    expect(sockets.length).toBeGreaterThan(connectionsBefore); // it did reach the engine, which said nothing
  });

  it('gives a stop the grace period on top of the call limit, then gives up', async () => {
    const { err, ms } = await timed(() => runtime.stop('c0ffee', 1));
    expect(err).toMatchObject({ code: 'service_unavailable', message: expect.stringContaining(`no answer to stop container within ${TIMEOUT_MS + 1000} ms`) });
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS + 1000 - 20);
    expect(ms).toBeLessThan(TIMEOUT_MS + 1000 + 2000);
  });
});
