import { estimateTokens, formatDuration, verdictOf } from '../../src/limits/rate-limits';

describe('rate limit headers and estimates', () => {
  it('writes durations the way OpenAI does (Go durations)', () => {
    expect(formatDuration(17.2)).toBe('18ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(-5)).toBe('0ms');
  });

  it('names the tightest limit of each kind and how long until it is full again', () => {
    const v = verdictOf(true, [
      { kind: 'requests', limit: 60, cost: 1, remaining: 59 },
      { kind: 'requests', limit: 10, cost: 1, remaining: 2 },
      { kind: 'tokens', limit: 6000, cost: 100, remaining: 3000 },
    ]);
    expect(v.headers).toEqual({
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '2',
      'x-ratelimit-reset-requests': '48s',
      'x-ratelimit-limit-tokens': '6000',
      'x-ratelimit-remaining-tokens': '3000',
      'x-ratelimit-reset-tokens': '30s',
    });
    expect(v.retryAfterMs).toBe(0);
  });

  it('sends only the headers of the kinds that are limited, none without a limit', () => {
    expect(verdictOf(true, [{ kind: 'tokens', limit: 1000, cost: 10, remaining: 750.6 }]).headers).toEqual({
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '750',
      'x-ratelimit-reset-tokens': '14.964s',
    });
    expect(verdictOf(true, [{ kind: 'requests', limit: 5, cost: 1, remaining: -1 }]).headers).toEqual({
      'x-ratelimit-limit-requests': '5',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1m12s',
    });
    expect(verdictOf(true, []).headers).toEqual({});
  });

  it('waits for the slowest refusing bucket', () => {
    const v = verdictOf(false, [
      { kind: 'requests', limit: 60, cost: 1, remaining: 0.5 },
      { kind: 'tokens', limit: 600, cost: 100, remaining: 40 },
    ]);
    expect(v.allowed).toBe(false);
    expect(v.retryAfterMs).toBeCloseTo(6000, 5); // 60 tokens at 10 per second
    expect(v.headers['x-ratelimit-remaining-requests']).toBe('0');
  });

  it('estimates tokens from the text and the room asked for, without tokenizing', () => {
    expect(estimateTokens({ messages: [{ role: 'user', content: 'x'.repeat(40) }], max_tokens: 16 })).toBe(Math.ceil(44 / 4) + 16);
    expect(estimateTokens({ prompt: 'abcd', max_completion_tokens: 4 })).toBe(1 + 4);
    expect(estimateTokens({ messages: 'not a list' })).toBe(3);
  });
});
