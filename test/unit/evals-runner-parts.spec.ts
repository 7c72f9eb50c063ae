import OpenAI from 'openai';
import { Config } from '../../src/config/config';
import { ChatCallError, ChatEndpoint, ChatTargetClient, retryAfterMs } from '../../src/evals/chat-target-client';
import { OpenAIHttpClient } from '../../src/serving/openai-http.client';
import { TargetGuard } from '../../src/common/net/target-guard';
import { buildComparison, ResultRow } from '../../src/evals/comparison';
import { DEFAULT_PRICES } from '../../src/evals/prices';
import { busyMs, MAX_WAIT_MS, retryDelayMs } from '../../src/evals/retry-policy';
import { OpenAIStandIn, startOpenAIStandIn } from '../support/openai-stand-in';

describe('retry policy', () => {
  it('reads Retry-After as seconds, an HTTP date, or retry-after-ms', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '150', 'retry-after': '9' }))).toBe(150);
    expect(retryAfterMs(new Headers({ 'retry-after': new Date(10_000 + 3000).toUTCString() }), 10_000)).toBe(3000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeNull();
    expect(retryAfterMs(new Headers())).toBeNull();
  });

  it("waits what the server asks (capped), else backs off exponentially with jitter", () => {
    expect(retryDelayMs(1, 100, 1500)).toBe(1500);
    expect(retryDelayMs(1, 100, 3_600_000)).toBe(MAX_WAIT_MS);
    expect(retryDelayMs(1, 100, null, () => 0)).toBe(50);
    expect(retryDelayMs(3, 100, null, () => 1)).toBe(400);
    expect(retryDelayMs(30, 100, null, () => 1)).toBe(MAX_WAIT_MS);
  });

  it('measures busy time as the union of request intervals (gaps between them do not count)', () => {
    expect(busyMs([])).toBe(0);
    expect(busyMs([{ startMs: 0, durationMs: 10 }, { startMs: 5, durationMs: 10 }, { startMs: 100, durationMs: 20 }])).toBe(35);
    expect(busyMs([{ startMs: 0, durationMs: 50 }, { startMs: 10, durationMs: 5 }])).toBe(50);
  });
});

describe('ChatTargetClient against the OpenAI stand-in', () => {
  let api: OpenAIStandIn;
  const key = 'sk-test-0123456789abcdef';
  const config = Config.fromEnv({ DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1', S3_BUCKET: 'bucket', LORAPLANE_MODE: 'dev' });
  const guard = new TargetGuard(config);
  const transport = new OpenAIHttpClient(config, guard);
  const client = new ChatTargetClient(config, transport);
  afterAll(async () => {
    transport.close();
    await guard.onModuleDestroy();
  });
  const endpoint = (over: Partial<ChatEndpoint> = {}): ChatEndpoint => ({ baseUrl: api.url, apiKey: key, model: 'o3-mini', reasoning: true, maxTokens: 256, temperature: null, stream: false, ...over });
  const messages = [{ role: 'user', content: 'What is 6 x 7? Answer with the number.' }];

  beforeAll(async () => {
    api = await startOpenAIStandIn({ apiKey: key, answer: () => '42', reasoningTokens: 100 });
  });
  afterAll(() => api.close());

  it('sends max_completion_tokens and no temperature to a reasoning model, and reads usage with reasoning tokens', async () => {
    const a = await client.complete(endpoint(), messages);
    expect(a.content).toBe('42');
    expect(a.usage).toEqual({ input: expect.any(Number), cachedInput: 0, output: 101, reasoning: 100 });
    expect(api.requests.at(-1)!.body).toEqual({ model: 'o3-mini', messages, max_completion_tokens: 256 });
    expect(a.ttftMs).toBeNull();
  });

  it("gets OpenAI's 400 unsupported_parameter for temperature/max_tokens on o-series, not retryable", async () => {
    const err = await client.complete(endpoint({ reasoning: false, temperature: 0 }), messages).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChatCallError);
    expect(err).toMatchObject({ status: 400, retryable: false });
    expect((err as Error).message).toMatch(/Unsupported parameter: 'temperature'/);
    const noTemp = await client.complete(endpoint({ reasoning: false, temperature: null }), messages).catch((e: unknown) => e);
    expect((noTemp as Error).message).toMatch(/Unsupported parameter: 'max_tokens'.*max_completion_tokens/);
    // The official SDK sees the same envelope.
    const sdk = new OpenAI({ baseURL: api.url, apiKey: key, maxRetries: 0 });
    const sdkErr = await sdk.chat.completions.create({ model: 'o4-mini', messages: [{ role: 'user', content: 'hi' }], temperature: 0.2 }).catch((e: unknown) => e);
    expect(sdkErr).toBeInstanceOf(OpenAI.BadRequestError);
    expect(sdkErr).toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'temperature', type: 'invalid_request_error' });
  });

  it('answers 429 with Retry-After N times (retryable, with the wait), and 401 for a wrong key', async () => {
    api.rateLimit('o4-mini', 1, 2);
    const err = await client.complete(endpoint({ model: 'o4-mini' }), messages).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterMs: 2000 });
    expect((await client.complete(endpoint({ model: 'o4-mini' }), messages)).content).toBe('42');
    const denied = await client.complete(endpoint({ apiKey: 'sk-wrong' }), messages).catch((e: unknown) => e);
    expect(denied).toMatchObject({ status: 401, retryable: false });
  });

  it('streams: content, time to first token and the usage chunk', async () => {
    const a = await client.complete(endpoint({ model: 'o4-mini', stream: true }), messages);
    expect(a).toMatchObject({ content: '42', usage: { output: 101, reasoning: 100 } });
    expect(a.ttftMs).not.toBeNull();
    expect(a.ttftMs!).toBeLessThanOrEqual(a.latencyMs);
    const sdk = new OpenAI({ baseURL: api.url, apiKey: key });
    let text = '';
    for await (const c of await sdk.chat.completions.create({ model: 'o3-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } })) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('42');
  });
});

describe('buildComparison', () => {
  const row = (targetId: string, itemIndex: number, correct: boolean, over: Partial<ResultRow> = {}): ResultRow => ({
    targetId, itemIndex, correct, error: null, sentAt: new Date(1_000_000 + itemIndex * 100), latencyMs: 100, ttftMs: null, inputTokens: 100, cachedInputTokens: 0, outputTokens: 10, ...over,
  });
  it('puts accuracy, API cost from the price table, self-hosted cost from GPU $/h over measured throughput, and break-even together', () => {
    const items = Array.from({ length: 4 }, (_, i) => ({ prompt: `q${i}`, reference: 'a' }));
    const c = buildComparison({
      suite: { name: 's', scorer: 'exact_match' },
      createdAt: new Date(0),
      items,
      targets: [
        { id: 'b', name: 'base', kind: 'base', model: 'tiny-lora', usdPerGpuHour: 2, gpus: 1 },
        { id: 'o', name: 'o3', kind: 'api', model: 'o3-mini', usdPerGpuHour: null, gpus: null },
      ],
      baselineTargetId: 'b',
      rows: [0, 1, 2, 3].flatMap((i) => [row('b', i, i < 1), row('o', i, i < 3)]),
      prices: DEFAULT_PRICES,
    });
    const [base, o3] = c.targets;
    expect(base.accuracy).toMatchObject({ k: 1, n: 4, rate: 0.25 });
    // 4 requests of 110 tokens, each 100 ms, back to back: 440 tokens in 0.4 s busy = 1100 tokens/s.
    expect(base.usd_per_1m_tokens).toBeCloseTo((2 / (1100 * 3600)) * 1e6, 6);
    expect(o3.usd_per_request).toBeCloseTo((100 * 1.1 + 10 * 4.4) / 1e6, 12);
    expect(o3.monthly.map((m) => m.tokens_per_day)).toEqual([1e6, 1e7]);
    expect(base.break_even).toEqual([expect.objectContaining({ api_target: 'o3' })]);
    expect(c.baseline).toBe('base');
  });
});
