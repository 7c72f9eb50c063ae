import { ClientGone } from '../../src/gateway/client-gone';
import { renameModel, usageOf } from '../../src/gateway/upstream-relay';

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
