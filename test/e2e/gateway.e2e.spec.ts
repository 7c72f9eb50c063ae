import http from 'node:http';
import net from 'node:net';
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { PrismaService } from '../../src/db/prisma.service';
import { GatewayHandler } from '../../src/gateway/gateway.handler';
import { InferenceRecord } from '../../src/gateway/gateway-hooks';
import { adapterFiles, examplesFromJsonl, train } from '../../jobs/tiny-lora/trainer';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { apiClient } from '../support/api-client';
import { requireEnv, startTestApp, TestApp, testS3, waitFor } from '../support/app';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';
import { ask, startReplica, stopAllReplicas, TestReplica } from '../support/replicas';
import { seedAdapterVersion } from '../support/seed-adapter';

/**
 * The inference gateway end to end with the official openai SDK: two tiny vLLM-compatible replicas with their
 * agents, a pool the reconciler keeps in sync, and a provider model (the OpenAI stand-in). Name resolution,
 * streaming with and without usage, routing by loaded adapter, retry on a dead replica, 503 with none ready, bad
 * input, tenancy, revocation, client abort reaching the upstream.
 */
describe('inference gateway (e2e)', () => {
  jest.setTimeout(90_000);
  const s3 = testS3();
  const bucket = requireEnv('S3_BUCKET');
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 300, nHeldOut: 20, seed: 5 });
  const lora = { r: 8, alpha: 16, dropout: 0 };
  let app: TestApp;
  let prisma: PrismaService;
  let key: string;
  let projectId: string;
  let otherKey: string;
  let replicas: TestReplica[] = [];
  let provider: OpenAIStandIn;
  const records: InferenceRecord[] = [];
  let client: OpenAI;

  const api = apiClient(() => ({ url: app.url, key }));

  const seedVersion = (adapter: string, files: { name: string; data: Buffer }[]) => seedAdapterVersion({ prisma, s3, bucket, projectId }, adapter, files);

  const callable = async () => (await client.models.list()).data.map((m) => m.id);

  beforeAll(async () => {
    app = await startTestApp({ RECONCILE_INTERVAL_MS: '500', AGENT_TIMEOUT_MS: '3000', GATEWAY_MAX_BODY_BYTES: '65536' });
    prisma = app.started.app.get(PrismaService);
    app.started.app.get(GatewayHandler).observe({ onRequestEnd: (r) => records.push({ ...r }) });
    const created = (await api('POST', '/admin/projects', { name: 'gateway e2e' }, app.apiKey)).body;
    key = created.api_key.value;
    projectId = created.id;
    otherKey = (await api('POST', '/admin/projects', { name: 'gateway e2e other' }, app.apiKey)).body.api_key.value;
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
    replicas = await Promise.all(['g0', 'g1'].map((n) => startReplica(n)));
    provider = await startOpenAIStandIn({ apiKey: 'sk-provider-0123456789', answer: () => 'from the provider', delayMs: 0 });
    const examples = examplesFromJsonl(trainJsonl);
    await seedVersion('tickets', adapterFiles(await train(examples, { seed: 1, n_epochs: 3, batch_size: 8, learning_rate: 0.05, lora }), lora));
    await seedVersion('tickets', adapterFiles(await train(examples.slice(0, 50), { seed: 2, n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora }), lora));
    expect((await api('POST', '/serving/pools', { name: 'gw-pool', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 })).status).toBe(201);
    for (const r of replicas) {
      expect((await api('POST', '/serving/pools/gw-pool/replicas', { name: r.name, vllm_url: r.vllmUrl, agent_url: r.agentUrl, agent_token: r.token })).status).toBe(201);
    }
    expect((await api('POST', '/serving/pools/gw-pool/aliases/tickets/rollout', { version: 1 })).status).toBe(200);
    const configured = await api('POST', '/provider_models', { name: 'gpt-4o-mini', base_url: provider.url, api_key: 'sk-provider-0123456789' });
    expect(configured).toMatchObject({ status: 201, body: { name: 'gpt-4o-mini', model: 'gpt-4o-mini', has_api_key: true } });
    expect(JSON.stringify((await api('GET', '/provider_models')).body)).not.toContain('sk-provider');
    expect((await prisma.providerModel.findFirstOrThrow({ where: { projectId } })).apiKeySealed).not.toContain('sk-provider');
    expect((await api('POST', '/provider_models', { name: 'bad', base_url: 'ftp://x' })).body.error.param).toBe('base_url');
    await waitFor('tickets and tickets@v1 callable', async () => {
      const ids = await callable();
      return ids.includes('tickets') && ids.includes('tickets@v1') && ids.includes('tiny-lora') ? ids : null;
    }, 30_000, 100);
  });
  afterAll(async () => {
    await stopAllReplicas();
    await provider?.close();
    await app?.close();
  });

  it('answers by alias, version and base model with the name the client sent, as the replica itself answers', async () => {
    const messages = heldOut[0].messages.slice(0, 2) as OpenAI.ChatCompletionMessageParam[];
    for (const model of ['tickets', 'tickets@v1', 'tiny-lora']) {
      const answer = await client.chat.completions.create({ model, messages, temperature: 0 });
      expect(answer.model).toBe(model);
      expect(answer.choices[0].message.content).toBe(await ask(replicas[0], model, messages));
      expect(answer.usage?.prompt_tokens).toBeGreaterThan(0);
    }
    const last = records.at(-1)!;
    expect(last).toMatchObject({ model: 'tiny-lora', kind: 'base', projectId, status: 200, errorKind: null });
    const completion = await client.completions.create({ model: 'tickets@v1', prompt: 'my card was charged twice', max_tokens: 8, temperature: 0 });
    expect(completion.model).toBe('tickets@v1');
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(records.at(-1)).toMatchObject({ endpoint: 'completions', kind: 'version', status: 200 });
    expect(last.usage?.total_tokens).toBeGreaterThan(0);
    const ids = await callable();
    expect(ids).toEqual(expect.arrayContaining(['tickets', 'tickets@v1', 'tiny-lora', 'gpt-4o-mini']));
    expect(ids).not.toContain('tickets@v2'); // registered, never deployed: not callable
    expect(await client.models.retrieve('tickets@v1')).toMatchObject({ id: 'tickets@v1', object: 'model', routing: { kind: 'version', pools: ['gw-pool'] } });
  });

  it('streams chunk by chunk; usage is forwarded only when asked, but always metered from upstream', async () => {
    const messages = [{ role: 'user' as const, content: heldOut[1].messages[1].content as string }];
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({ model: 'tickets', messages, temperature: 0, stream: true, stream_options: { include_usage: true } })) chunks.push(c);
    expect(chunks.every((c) => c.model === 'tickets')).toBe(true);
    expect(chunks.at(-1)!.usage?.completion_tokens).toBeGreaterThan(0);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe(await ask(replicas[1], 'tickets', messages));

    const plain: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({ model: 'tickets', messages, stream: true })) plain.push(c);
    expect(plain.some((c) => c.usage)).toBe(false);
    const rec = records.at(-1)!;
    expect(rec).toMatchObject({ stream: true, kind: 'alias', status: 200 });
    expect(rec.usage?.completion_tokens).toBeGreaterThan(0);
    expect(rec.ttftMs).not.toBeNull();

    // A provider model: the stand-in saw include_usage although the client did not ask, and its key.
    const viaProvider: string[] = [];
    for await (const c of await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })) viaProvider.push(c.choices[0]?.delta?.content ?? '');
    expect(viaProvider.join('')).toBe('from the provider');
    expect(provider.requests.at(-1)!.body).toMatchObject({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true } });
    expect(records.at(-1)!.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it("works from LangChain's ChatOpenAI with only baseURL changed (invoke and stream)", async () => {
    const messages = heldOut[2].messages.slice(0, 2) as { role: 'system' | 'user'; content: string }[];
    const chat = new ChatOpenAI({ model: 'tickets', temperature: 0, apiKey: key, maxRetries: 0, configuration: { baseURL: `${app.url}/v1` } });
    const expected = await ask(replicas[0], 'tickets', messages);
    const answer = await chat.invoke(messages.map((m) => [m.role, m.content] as [string, string]));
    expect(answer.content).toBe(expected);
    expect(answer.usage_metadata?.input_tokens).toBeGreaterThan(0);
    let streamed = '';
    for await (const chunk of await chat.stream(messages.map((m) => [m.role, m.content] as [string, string]))) streamed += String(chunk.content);
    expect(streamed).toBe(expected);
    const missing = new ChatOpenAI({ model: 'no-such-model', apiKey: key, maxRetries: 0, configuration: { baseURL: `${app.url}/v1` } });
    await expect(missing.invoke('hi')).rejects.toThrow(/does not exist or you do not have access/);
  });

  it("gives an application an 'inference' key that calls and lists models and nothing else, and a monitor a 'read' key that only reads", async () => {
    const made = await api('POST', '/api_keys', { name: 'the app', scopes: ['inference'] });
    expect(made).toMatchObject({ status: 201, body: { scopes: ['inference'] } });
    const reader = (await api('POST', '/api_keys', { name: 'the monitor', scopes: ['read', 'read'] })).body;
    expect(reader.scopes).toEqual(['read']);
    const app_ = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: made.body.value, maxRetries: 0 });
    const monitor = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: reader.value, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: heldOut[0].messages[1].content as string }];

    // The app's key: models called (plain, streamed, from LangChain) and listed, its own project read; nothing else.
    expect((await app_.chat.completions.create({ model: 'tickets', messages, max_tokens: 4 })).choices).toHaveLength(1);
    let streamed = 0;
    for await (const c of await app_.chat.completions.create({ model: 'tickets', messages, max_tokens: 4, stream: true })) streamed += c.choices.length;
    expect(streamed).toBeGreaterThan(0);
    const lc = new ChatOpenAI({ model: 'tickets', apiKey: made.body.value, maxRetries: 0, maxTokens: 4, configuration: { baseURL: `${app.url}/v1` } });
    expect(typeof (await lc.invoke('where is my parcel')).content).toBe('string');
    expect((await app_.models.list()).data.map((m) => m.id)).toContain('tickets');
    expect((await app_.models.retrieve('tickets')).id).toBe('tickets');
    expect((await api('GET', '/project', undefined, made.body.value)).body.scopes).toEqual(['inference']);
    const refused = [
      app_.files.list(),
      app_.fineTuning.jobs.list(),
      app_.models.delete('tickets'),
      app_.post('/api_keys', { body: { name: 'escalate' } }),
      app_.post('/serving/pools/gw-pool/aliases/tickets/rollout', { body: { version: 2 } }),
    ];
    for (const call of refused) {
      const err = await call.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
      expect((err as InstanceType<typeof OpenAI.PermissionDeniedError>).message).toMatch(/may only call and list models \(scopes: inference\)/);
    }

    // The monitor's key: every GET of its project, no model call, no change.
    expect((await monitor.files.list()).data).toBeDefined();
    expect((await api('GET', '/serving/pools/gw-pool', undefined, reader.value)).status).toBe(200);
    const noCall = await monitor.chat.completions.create({ model: 'tickets', messages }).then(() => null, (e: unknown) => e);
    expect(noCall).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((noCall as Error).message).toMatch(/may not call models \(scopes: read\)/);
    expect((await api('POST', '/serving/pools/gw-pool/aliases/tickets/rollout', { version: 2 }, reader.value)).status).toBe(403);
    expect((await api('DELETE', `/api_keys/${made.body.id}`, undefined, reader.value)).status).toBe(403);

    // Only the three scopes a project's key may hold, named when wrong; the project key may revoke restricted keys.
    expect((await api('POST', '/api_keys', { name: 'x', scopes: ['admin'] })).body.error).toMatchObject({ code: 'invalid_request', param: 'scopes[0]' });
    expect((await api('POST', '/api_keys', { name: 'x', scopes: [] })).body.error).toMatchObject({ code: 'invalid_request', param: 'scopes' });
    expect((await api('DELETE', `/api_keys/${reader.id}`)).status).toBe(200);
    expect((await api('DELETE', `/api_keys/${made.body.id}`)).status).toBe(200);
  });

  it('refuses bad input with a 4xx naming the field, unknown names with 404 model_not_found, other projects included', async () => {
    const post = (body: unknown, as = key, path = '/chat/completions') => api('POST', path, body, as);
    const cases: [unknown, number, string | null][] = [
      [{ model: 'tickets' }, 400, 'messages'],
      [{ model: 'tickets', messages: 'hi' }, 400, 'messages'],
      [{ model: 'tickets', messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages[0].role'],
      [{ model: 'tickets', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }, 400, 'temperature'],
      [{ model: 'tickets', messages: [{ role: 'user', content: 'x' }], frobnicate: true }, 400, 'frobnicate'],
      [{ messages: [{ role: 'user', content: 'x' }] }, 400, 'model'],
      [{ model: 'nope', messages: [{ role: 'user', content: 'x' }] }, 404, 'model'],
    ];
    for (const [body, status, param] of cases) {
      const res = await post(body);
      expect([res.status, res.body.error?.param]).toEqual([status, param]);
    }
    expect((await post({ model: 'tickets' }, key, '/completions')).body.error.param).toBe('prompt');
    const huge = await post({ model: 'tickets', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] });
    expect([huge.status, huge.body.error.code]).toEqual([413, 'payload_too_large']);
    const notJson = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"model":' });
    expect(notJson.status).toBe(400);
    // Another project's alias, version and provider model do not exist for it, exactly like a name nobody has.
    for (const model of ['tickets', 'tickets@v1', 'gpt-4o-mini', 'nobody-has-this']) {
      const res = await post({ model, messages: [{ role: 'user', content: 'x' }] }, otherKey);
      expect([res.status, res.body.error.code, res.body.error.message]).toEqual([404, 'model_not_found', `The model '${model}' does not exist or you do not have access to it.`]);
    }
    await expect(new OpenAI({ baseURL: `${app.url}/v1`, apiKey: otherKey, maxRetries: 0 }).models.retrieve('tickets')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await post({ model: 'tickets', messages: [{ role: 'user', content: 'x' }] }, 'lp_wrongwrongwrongwrongwrong')).status).toBe(401);
  });

  it("passes on a provider's 429 with the wait it asked for, which the openai SDK then keeps to", async () => {
    provider.rateLimit('gpt-4o-mini', 1, 2);
    const refused = await api('POST', '/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
    expect([refused.headers.get('retry-after'), refused.headers.get('retry-after-ms')]).toEqual(['2', '2000']);
    // The provider's own x-ratelimit-* describe loraplane's account with it, not the caller's: not passed on.
    expect(refused.headers.get('x-ratelimit-limit-requests')).toBeNull();
  });

  it('answers 503 with Retry-After when no replica has the name loaded', async () => {
    expect((await api('POST', '/serving/pools', { name: 'gw-empty', base_model: 'tiny-lora', max_lora_rank: 8, max_loras: 4 })).status).toBe(201);
    expect((await api('POST', '/serving/pools/gw-empty/deployments', { adapter: 'tickets', version: 2 })).status).toBeLessThan(300);
    await waitFor('tickets@v2 known', async () => (await api('POST', '/chat/completions', { model: 'tickets@v2', messages: [{ role: 'user', content: 'x' }] })).status === 503, 5000, 50);
    const res = await api('POST', '/chat/completions', { model: 'tickets@v2', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.body.error.code).toBe('service_unavailable');
  });

  it('stops a revoked key within a second', async () => {
    const created = (await api('POST', '/admin/projects', { name: 'gateway revoke' }, app.apiKey)).body;
    const extra = created.api_key.value as string;
    const row = await prisma.apiKey.findFirstOrThrow({ where: { projectId: created.id } });
    expect((await api('GET', '/models', undefined, extra)).status).toBe(200);
    await prisma.apiKey.update({ where: { id: row.id }, data: { revokedAt: new Date() } });
    const t0 = Date.now();
    await waitFor('revocation', async () => (await api('POST', '/chat/completions', { model: 'x', messages: [{ role: 'user', content: 'x' }] }, extra)).status === 401, 1000, 20);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect((await api('GET', '/models', undefined, extra)).status).toBe(401);
  });

  it('aborts the upstream request when the client disconnects mid-stream', async () => {
    let upstreamClosed = false;
    let writing: NodeJS.Timeout | undefined;
    const slow = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'slow', choices: [{ index: 0, delta: { content: 'tick' }, finish_reason: null }] })}\n\n`;
      writing = setInterval(() => res.write(chunk), 20);
      res.once('close', () => {
        upstreamClosed = true;
        clearInterval(writing);
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const port = (slow.address() as net.AddressInfo).port;
      expect((await api('POST', '/provider_models', { name: 'slow-provider', base_url: `http://127.0.0.1:${port}/v1`, model: 'slow' })).status).toBe(201);
      await waitFor('slow-provider known', async () => (await callable()).includes('slow-provider'), 5000, 50);
      const controller = new AbortController();
      const stream = await client.chat.completions.create({ model: 'slow-provider', messages: [{ role: 'user', content: 'x' }], stream: true }, { signal: controller.signal });
      let seen = 0;
      // The SDK ends the iteration (or throws an abort error, by version) once the signal fires.
      await (async () => {
        for await (const c of stream) {
          expect(c.model).toBe('slow-provider');
          if (++seen === 3) controller.abort();
        }
      })().catch((err: Error) => expect(err.name).toMatch(/Abort/));
      expect(seen).toBe(3);
      await waitFor('upstream saw the abort', async () => upstreamClosed, 3000, 20);
      await waitFor('abort recorded', async () => records.some((r) => r.model === 'slow-provider'), 3000, 20);
      expect(records.filter((r) => r.model === 'slow-provider').map((r) => r.errorKind)).toEqual(['client_abort']);
    } finally {
      clearInterval(writing);
      slow.closeAllConnections();
      await new Promise((r) => slow.close(r));
    }
  });

  it('keeps answering non-streaming requests on the other replica when one is killed with -9', async () => {
    const messages = [{ role: 'user' as const, content: 'printer on fire' }];
    let stop = false;
    const outcomes: (string | Error)[] = [];
    const flow = async () => {
      while (!stop) {
        outcomes.push(await client.chat.completions.create({ model: 'tickets@v1', messages }).then((a) => a.choices[0].message.content ?? '', (e: Error) => e));
      }
    };
    const flows = Array.from({ length: 4 }, flow);
    await new Promise((r) => setTimeout(r, 300));
    await replicas[0].killVllm();
    const killedAt = outcomes.length;
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(flows);
    expect(outcomes.length).toBeGreaterThan(killedAt + 10);
    expect(outcomes.filter((o) => o instanceof Error)).toEqual([]);
    expect(records.some((r) => r.retried)).toBe(true);
    await replicas[0].startVllm();
  });
});
