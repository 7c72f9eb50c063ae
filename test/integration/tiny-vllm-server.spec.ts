import fs from 'node:fs';
import { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { makeTicketSplit } from '../fixtures/tiny-task';
import { createServer, parseArgs } from '../../jobs/tiny-lora/server';
import { adapterFiles, examplesFromJsonl, train, writeFiles } from '../../jobs/tiny-lora/trainer';

/**
 * The tiny model's server must answer exactly as vLLM's runtime LoRA API does (shared/reference/vllm-lora.md): the
 * agent and reconciler are built against it, so every status, body shape and message here is part of the contract.
 */
describe('tiny-lora vLLM-compatible server (integration)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-vllm-'));
  const adapterDir = path.join(dir, 'tickets@1');
  const { trainJsonl, heldOut } = makeTicketSplit({ nTrain: 400, nHeldOut: 80, seed: 21 });
  let server: ReturnType<typeof createServer>;
  let base: string;

  const post = (route: string, body: unknown) =>
    fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = async (model: string, messages: unknown) => {
    const res = await post('/v1/chat/completions', { model, messages, max_tokens: 16, temperature: 0 });
    expect(res.status).toBe(200);
    return ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content;
  };

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const streamChunks = async (body: Record<string, unknown>, route = '/v1/chat/completions'): Promise<any[]> => {
    const res = await post(route, body);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    return events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)));
  };

  beforeAll(async () => {
    const trained = await train(examplesFromJsonl(trainJsonl), { seed: 3, n_epochs: 4, batch_size: 8, learning_rate: 0.05, lora: { r: 8, alpha: 16, dropout: 0 } });
    await writeFiles(adapterDir, adapterFiles(trained, { r: 8, alpha: 16, dropout: 0 }));
    server = createServer(parseArgs(['--enable-lora', '--max-lora-rank', '16', '--max-loras', '2']), { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads with a plain-text success, lists the adapter card, and refuses a second load without load_inplace', async () => {
    const ok = await post('/v1/load_lora_adapter', { lora_name: 'tickets@1', lora_path: adapterDir });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await ok.text()).toBe("Success: LoRA adapter 'tickets@1' added successfully.");

    const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: Record<string, unknown>[] };
    expect(models.data[0]).toMatchObject({ id: 'tiny-lora', parent: null, max_model_len: 4096, owned_by: 'vllm' });
    expect(models.data[1]).toMatchObject({ id: 'tickets@1', root: adapterDir, parent: 'tiny-lora', object: 'model' });

    const again = await post('/v1/load_lora_adapter', { lora_name: 'tickets@1', lora_path: adapterDir });
    expect(again.status).toBe(400);
    expect(await again.json()).toEqual({
      error: {
        message: "The lora adapter 'tickets@1' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.",
        type: 'InvalidUserInput',
        param: null,
        code: 400,
      },
    });
    const inplace = await post('/v1/load_lora_adapter', { lora_name: 'tickets@1', lora_path: adapterDir, load_inplace: true });
    expect(inplace.status).toBe(200);
  });

  it('answers the documented errors: missing fields 400, missing path 404, unknown unload 404, bad adapter 500', async () => {
    const missing = await post('/v1/load_lora_adapter', { lora_name: 'x' });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toBe("Both 'lora_name' and 'lora_path' must be provided.");

    const nopath = await post('/v1/load_lora_adapter', { lora_name: 'ghost', lora_path: '/nonexistent/ghost' });
    expect(nopath.status).toBe(404);
    expect(await nopath.json()).toEqual({ error: { message: 'Loading lora ghost failed: No adapter found for /nonexistent/ghost', type: 'NotFoundError', param: null, code: 404 } });

    const unknown = await post('/v1/unload_lora_adapter', { lora_name: 'ghost' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe("The lora adapter 'ghost' cannot be found.");

    // A rank over --max-lora-rank loads nothing and says why.
    const big = path.join(dir, 'big');
    const trained = await train(examplesFromJsonl(trainJsonl).slice(0, 20), { seed: 1, n_epochs: 1, batch_size: 8, learning_rate: 0.05, lora: { r: 32, alpha: 64, dropout: 0 } });
    await writeFiles(big, adapterFiles(trained, { r: 32, alpha: 64, dropout: 0 }));
    const tooBig = await post('/v1/load_lora_adapter', { lora_name: 'big', lora_path: big });
    expect(tooBig.status).toBe(500);
    expect(((await tooBig.json()) as { error: { type: string; message: string } }).error).toMatchObject({ type: 'InternalServerError', message: expect.stringMatching(/max_lora_rank 16/) });
    const names = ((await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(names).not.toContain('big');
  });

  it('serves the adapter by name with a real accuracy difference, streams, and forgets it on unload', async () => {
    const sample = heldOut.slice(0, 40);
    let baseRight = 0;
    let tunedRight = 0;
    for (const ex of sample) {
      if ((await answer('tiny-lora', ex.messages.slice(0, 2))) === ex.label) baseRight++;
      if ((await answer('tickets@1', ex.messages.slice(0, 2))) === ex.label) tunedRight++;
    }
    expect(tunedRight / sample.length).toBeGreaterThan(0.8);
    expect(tunedRight - baseRight).toBeGreaterThan(sample.length * 0.4);

    // Streamed: one chunk per generated token (after the role chunk), the last with finish_reason, then usage.
    const label = sample[0].label;
    const chunks = await streamChunks({ model: 'tickets@1', messages: sample[0].messages.slice(0, 2), temperature: 0, stream: true, stream_options: { include_usage: true } });
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const tokenChunks = chunks.slice(1, -2);
    expect(tokenChunks.map((c) => c.choices[0].delta.content)).toEqual([...label]);
    expect(chunks.at(-2).choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: label.length + 1 } });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);

    // OpenAI's chat logprobs, as vLLM returns them: one entry per token, the chosen token first among its top.
    type Lp = { token: string; logprob: number; bytes: number[] };
    const withLp = (await (await post('/v1/chat/completions', { model: 'tickets@1', messages: sample[0].messages.slice(0, 2), temperature: 0, logprobs: true, top_logprobs: 3 })).json()) as {
      choices: { message: { content: string }; logprobs: { content: (Lp & { top_logprobs: Lp[] })[] } }[];
    };
    const content = withLp.choices[0].logprobs.content;
    expect(content.map((t) => t.token).join('')).toBe(withLp.choices[0].message.content);
    for (const lp of content) {
      expect(lp.top_logprobs).toHaveLength(3);
      expect(lp.top_logprobs[0]).toEqual({ token: lp.token, logprob: lp.logprob, bytes: [...Buffer.from(lp.token)] });
      expect(lp.top_logprobs[0].logprob).toBeGreaterThanOrEqual(lp.top_logprobs[1].logprob);
      expect(lp.logprob).toBeLessThanOrEqual(0);
    }
    const bad = await post('/v1/chat/completions', { model: 'tickets@1', messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('top_logprobs');

    const gone = await post('/v1/unload_lora_adapter', { lora_name: 'tickets@1' });
    expect(await gone.text()).toBe("Success: LoRA adapter 'tickets@1' removed successfully.");
    const after = await post('/v1/chat/completions', { model: 'tickets@1', messages: [{ role: 'user', content: 'hi' }] });
    expect(after.status).toBe(404);
    expect(await after.json()).toEqual({ error: { message: 'The model `tickets@1` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } });
  });

  it('honours max_tokens, stop, temperature/top_p/seed, and serves /v1/completions with its tokenizer', async () => {
    await post('/v1/load_lora_adapter', { lora_name: 'tickets@2', lora_path: adapterDir });
    const ticket = heldOut.find((e) => e.label === 'shipping')!;
    const messages = ticket.messages.slice(0, 2);
    const chat = async (body: Record<string, unknown>) => {
      const res = await post('/v1/chat/completions', { model: 'tickets@2', messages, ...body });
      expect(res.status).toBe(200);
      return ((await res.json()) as { choices: { message: { content: string }; finish_reason: string; stop_reason: string | null }[]; usage: Record<string, number> });
    };
    const whole = await chat({ temperature: 0 });
    expect(whole.choices[0]).toMatchObject({ message: { content: 'shipping' }, finish_reason: 'stop', stop_reason: null });
    // usage counts the model's tokens: 1 + (2 + bytes) per message for the prompt, 8 bytes + the end token.
    const promptTokens = 1 + messages.reduce((n, m) => n + 2 + Buffer.byteLength(m.content), 0);
    expect(whole.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 9, total_tokens: promptTokens + 9 });

    const cut = await chat({ temperature: 0, max_tokens: 3 });
    expect(cut.choices[0]).toMatchObject({ message: { content: 'shi' }, finish_reason: 'length' });
    expect(cut.usage.completion_tokens).toBe(3);
    const stopped = await chat({ temperature: 0, stop: ['pp', 'zz'] });
    expect(stopped.choices[0]).toMatchObject({ message: { content: 'shi' }, finish_reason: 'stop', stop_reason: 'pp' });
    const streamedStop = await streamChunks({ model: 'tickets@2', messages, temperature: 0, stop: 'pp', stream: true });
    expect(streamedStop.map((c) => c.choices[0].delta.content ?? '').join('')).toBe('shi');

    // Sampling: a seed makes it reproducible; temperature 2 with top_p 1 wanders from the greedy answer.
    const sampled = async (seed: number) => (await chat({ temperature: 2, top_p: 1, seed, max_tokens: 12 })).choices[0].message.content;
    expect(await sampled(7)).toBe(await sampled(7));
    const draws = await Promise.all([1, 2, 3, 4, 5, 6].map(sampled));
    expect(draws.some((d) => d !== 'shipping')).toBe(true);
    // A tiny top_p keeps only the most likely token: greedy again, whatever the temperature.
    expect((await chat({ temperature: 2, top_p: 1e-9, seed: 1 })).choices[0].message.content).toBe('shipping');

    const prompt = `${messages[0].content} ${messages[1].content}`;
    const completion = await post('/v1/completions', { model: 'tickets@2', prompt, temperature: 0, max_tokens: 16, logprobs: 2 });
    expect(completion.status).toBe(200);
    const body = (await completion.json()) as { object: string; choices: { text: string; finish_reason: string; logprobs: { tokens: string[]; top_logprobs: Record<string, number>[] } }[]; usage: Record<string, number> };
    expect(body.object).toBe('text_completion');
    expect(body.choices[0].logprobs.tokens.join('')).toBe(body.choices[0].text);
    expect(Object.keys(body.choices[0].logprobs.top_logprobs[0])).toHaveLength(2);
    expect(body.usage.prompt_tokens).toBe(Buffer.byteLength(prompt));
    const streamed = await streamChunks({ model: 'tickets@2', prompt, temperature: 0, max_tokens: 16, stream: true }, '/v1/completions');
    expect(streamed.map((c) => c.choices[0].text).join('')).toBe(body.choices[0].text);
    expect(streamed.at(-1).choices[0].finish_reason).toBe(body.choices[0].finish_reason);
    const noPrompt = await post('/v1/completions', { model: 'tickets@2' });
    expect(noPrompt.status).toBe(400);
    const tooLong = await post('/v1/chat/completions', { model: 'tickets@2', messages, max_tokens: 5000 });
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as { error: { message: string } }).error.message).toMatch(/maximum context length is 4096 tokens/);
  });

  it('has no runtime LoRA routes unless VLLM_ALLOW_RUNTIME_LORA_UPDATING is set, like vLLM', async () => {
    const locked = createServer(parseArgs(['--enable-lora']), {});
    await new Promise<void>((r) => locked.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(locked.address() as AddressInfo).port}/v1/load_lora_adapter`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ lora_name: 'a', lora_path: adapterDir }),
      });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ detail: 'Not Found' });
    } finally {
      await new Promise((r) => locked.close(r));
    }
  });
});
