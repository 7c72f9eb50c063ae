import net from 'node:net';
import { DomainError } from '../../src/common/domain-error';
import { Config } from '../../src/config/config';
import { ObjectStore } from '../../src/storage/object-store';

/** A store that accepts connections and never answers must not hold a call forever. */
describe('ObjectStore time limits', () => {
  let silent: net.Server;
  const sockets: net.Socket[] = [];
  let port: number;
  beforeAll(async () => {
    silent = net.createServer((s) => sockets.push(s)); // read nothing, write nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    port = (silent.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => silent.close(r));
  });

  it('gives up on a silent store after S3_TIMEOUT_MS (per attempt) with a 503, not a hang', async () => {
    const config = Config.fromEnv({
      DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1', S3_BUCKET: 'bucket', LORAPLANE_MODE: 'dev', LOG_LEVEL: 'silent',
      S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_ACCESS_KEY_ID: 'a', S3_SECRET_ACCESS_KEY: 'b', S3_TIMEOUT_MS: '300',
    });
    const store = new ObjectStore(config);
    const t0 = Date.now();
    const err = await store.head('some/key').then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe('service_unavailable');
    // 3 attempts of 300 ms plus the SDK's backoff between them: seconds, not the minutes of a hung socket.
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(sockets.length).toBeGreaterThan(0);
  });
});
