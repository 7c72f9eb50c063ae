import { SharedBucket } from '../../src/limits/local-allowance';
import { estimateTokens, formatDuration, verdictOf } from '../../src/limits/rate-limits';

/** A bucket as Redis last reported it, this gateway holding none of it. */
function bucket(kind: 'requests' | 'tokens', limit: number, remaining: number): SharedBucket {
  const b = new SharedBucket(`${kind}-${limit}`, kind, limit);
  b.redisLevel = remaining;
  return b;
}

describe('rate limit headers and estimates', () => {
  it('writes durations the way OpenAI does (Go durations)', () => {
    expect(formatDuration(17.2)).toBe('18ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(-5)).toBe('0ms');
  });

  it('names the tightest limit of each kind and how long until it is full again', () => {
    const v = verdictOf(true, [bucket('requests', 60, 59), bucket('requests', 10, 2), bucket('tokens', 6000, 3000)], 100);
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
    expect(verdictOf(true, [bucket('tokens', 1000, 750.6)], 10).headers).toEqual({
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '750',
      'x-ratelimit-reset-tokens': '14.964s',
    });
    expect(verdictOf(true, [bucket('requests', 5, -1)], 10).headers).toEqual({
      'x-ratelimit-limit-requests': '5',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1m12s',
    });
    expect(verdictOf(true, [], 10).headers).toEqual({});
  });

  it('waits for the slowest refusing bucket', () => {
    const v = verdictOf(false, [bucket('requests', 60, 0.5), bucket('tokens', 600, 40)], 100);
    expect(v.allowed).toBe(false);
    expect(v.retryAfterMs).toBeCloseTo(6000, 5); // 60 tokens at 10 per second
    expect(v.refusedBy?.kind).toBe('tokens'); // the longer wait names the kind (OpenAI's error type)
    expect(v.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(verdictOf(false, [bucket('requests', 60, 0.5), bucket('tokens', 600, 590)], 100).refusedBy?.kind).toBe('requests');
    expect(verdictOf(true, [bucket('requests', 60, 0.5)], 1).refusedBy).toBeUndefined();
  });

  it('estimates tokens from the text and the room asked for, without tokenizing', () => {
    expect(estimateTokens({ messages: [{ role: 'user', content: 'x'.repeat(40) }], max_tokens: 16 })).toBe(Math.ceil(44 / 4) + 16);
    expect(estimateTokens({ prompt: 'abcd', max_completion_tokens: 4 })).toBe(1 + 4);
    expect(estimateTokens({ messages: 'not a list' })).toBe(3);
  });
});
