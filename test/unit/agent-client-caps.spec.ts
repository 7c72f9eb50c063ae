import http from 'node:http';
import { AddressInfo } from 'node:net';
import { TargetGuard } from '../../src/common/net/target-guard';
import { Config } from '../../src/config/config';
import { AgentCallFailed, AgentClient } from '../../src/serving/agent-client';
import { OpenAIHttpClient } from '../../src/serving/openai-http.client';

/**
 * A replica's agent URL is tenant-supplied: an "agent" that answers its status with an endless body fails that sync
 * with a message naming the cap (the reconciler records it as the replica's last error and backs off), and the
 * worker hangs up instead of reading on.
 */
describe('AgentClient against an endless agent', () => {
  const CAP = 64 * 1024;
  let server: http.Server;
  let url: string;
  let written = 0;
  let hungUp = false;

  beforeAll(async () => {
    const chunk = Buffer.alloc(16 * 1024, ' ');
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"generation":1,"pad":"');
      const pump = () => {
        while (!hungUp) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.once('close', () => (hungUp = true));
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('fails the status call with the cap named, and hangs up', async () => {
    const config = Config.fromEnv({
      DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1', S3_BUCKET: 'bucket', LORAPLANE_MODE: 'dev', LOG_LEVEL: 'silent',
      UPSTREAM_MAX_RESPONSE_BYTES: String(CAP), AGENT_TIMEOUT_MS: '10000',
    });
    const guard = new TargetGuard(config); // dev mode: loopback is allowed
    const transport = new OpenAIHttpClient(config, guard);
    try {
      const err = await new AgentClient(config, transport).status(url, 't'.repeat(32)).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(AgentCallFailed);
      expect((err as AgentCallFailed).message).toBe(`agent GET /v1/status: the answer exceeded the limit of ${CAP} bytes and was cut off`);
      await new Promise((r) => setTimeout(r, 100));
      expect(hungUp).toBe(true);
      // What was sent before the hang-up: the cap plus what socket buffers held, not an endless read.
      expect(written).toBeLessThan(CAP + 16 * 1024 * 1024);
    } finally {
      transport.onModuleDestroy();
      await guard.onModuleDestroy();
    }
  });
});
