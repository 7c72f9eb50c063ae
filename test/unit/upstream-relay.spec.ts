import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { ClientGone } from '../../src/gateway/client-gone';
import { headersForHead, writeHead } from '../../src/gateway/response-head';
import { relayJson, relayStream, renameModel, usageOf } from '../../src/gateway/upstream-relay';

/** The pieces of the gateway's relay that read an answer without parsing all of it. */
describe('usageOf', () => {
  const answer = (extra: Record<string, unknown>) =>
    JSON.stringify({ id: 'x', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' } }], ...extra });

  it('reads the top-level usage block, nested details included', () => {
    const text = answer({ usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } } });
    expect(usageOf(text)).toEqual({ prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
  });

  it('is not fooled by "usage" in the generated text, or by braces inside strings', () => {
    const text = JSON.stringify({
      choices: [{ message: { content: 'my "usage": {"prompt_tokens": 999} and a } brace' } }],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
      note: 'a { and a " after',
    });
    expect(usageOf(text)).toEqual({ prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 });
  });

  it('fills total_tokens when missing, and gives null for no usage, usage null, or no JSON', () => {
    expect(usageOf(answer({ usage: { prompt_tokens: 3, completion_tokens: 2 } }))).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    expect(usageOf(answer({}))).toBeNull();
    expect(usageOf(answer({ usage: null }))).toBeNull();
    expect(usageOf('"usage": {"prompt_tokens": ')).toBeNull();
  });

  it('renames only the first (top-level) model field', () => {
    expect(renameModel('{"model":"up","x":{"model":"inner"}}', JSON.stringify('mine'))).toBe('{"model":"mine","x":{"model":"inner"}}');
  });
});

describe('ClientGone', () => {
  it('calls each listener once, not the removed ones, and reports aborted', () => {
    const gone = new ClientGone();
    const calls: string[] = [];
    const a = () => calls.push('a');
    const b = () => calls.push('b');
    gone.addEventListener('abort', a, { once: true });
    gone.addEventListener('abort', b);
    gone.removeEventListener('abort', a);
    expect(gone.aborted).toBe(false);
    gone.abort();
    gone.abort();
    expect(gone.aborted).toBe(true);
    expect(calls).toEqual(['b']);
  });
});

describe('headers held for the head (admission x-ratelimit-*)', () => {
  /** A real server whose handler holds `held` and then answers through `answer`; resolves with the client's view. */
  async function served(answer: (res: http.ServerResponse) => void): Promise<{ headers: http.IncomingHttpHeaders; body: string }> {
    const server = http.createServer((_req, res) => answer(res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      return { headers: Object.fromEntries(res.headers), body: await res.text() };
    } finally {
      server.close();
    }
  }

  it('sends them with a JSON answer, a stream and an error head; the head\'s own win on a clash', async () => {
    const held = { 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '9', 'content-type': 'text/plain' };
    const json = await served((res) => {
      headersForHead(res, { 'x-ratelimit-limit-requests': '10' });
      headersForHead(res, held);
      relayJson(Buffer.from('{"model":"up","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'), 200, res, 'mine');
    });
    expect(json.headers).toMatchObject({ 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '9', 'content-type': 'application/json' });
    expect(JSON.parse(json.body).model).toBe('mine');
    const stream = await served((res) => {
      headersForHead(res, held);
      const upstream = Object.assign(Readable.from([Buffer.from('data: {"model":"up","choices":[{"delta":{"content":"hi"}}]}\n\n'), Buffer.from('data: [DONE]\n\n')]), { statusCode: 200, headers: {} });
      void relayStream(upstream, res, { clientModel: 'mine', forwardUsage: false, maxEventBytes: 1024, maxTotalBytes: 4096, startedAt: performance.now() });
    });
    expect(stream.headers).toMatchObject({ 'x-ratelimit-remaining-requests': '9', 'content-type': 'text/event-stream; charset=utf-8' });
    expect(stream.body).toBe('data: {"model":"mine","choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n');
    const error = await served((res) => {
      headersForHead(res, held);
      writeHead(res, 429, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end('{}');
    });
    expect(error.headers).toMatchObject({ 'x-ratelimit-remaining-requests': '9', 'retry-after': '3', 'content-type': 'application/json' });
    const plain = await served((res) => {
      writeHead(res, 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    expect(plain.headers['x-ratelimit-limit-requests']).toBeUndefined();
  });
});
