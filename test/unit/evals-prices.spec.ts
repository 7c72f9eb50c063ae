import { DomainError } from '../../src/common/domain-error';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { availabilityWarning, DEFAULT_PRICES, priceOf, priceTable } from '../../src/evals/prices';

function domainError(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error('expected a DomainError');
}

const LIST = { as_of: '2025-06-01', source: 'https://openai.com/api/pricing' };

describe('price table', () => {
  it('has the default list prices per 1M tokens, each with its date and source', () => {
    expect(DEFAULT_PRICES).toEqual({
      'o3-mini': { input: 1.1, cached_input: 0.55, output: 4.4, ...LIST, available_from: '2025-01-31', available_until: '2026-10-23' },
      'o4-mini': { input: 1.1, cached_input: 0.275, output: 4.4, ...LIST, available_from: '2025-04-16', available_until: '2026-10-23' },
      'gpt-4o-mini': { input: 0.15, cached_input: 0.075, output: 0.6, ...LIST, available_from: '2024-07-18' },
      'ft:gpt-4o-mini': { input: 0.3, cached_input: 0.15, output: 1.2, ...LIST, available_from: '2024-07-18' },
    });
    expect(priceTable()).toEqual(DEFAULT_PRICES);
  });

  it('merges a partial override of a known model and adds a complete new one', () => {
    const table = priceTable({
      'o3-mini': { input: 1.0, as_of: '2025-09-01' },
      'gpt-4.1-mini': { input: 0.4, cached_input: 0.1, output: 1.6, as_of: '2025-06-01', source: 'https://openai.com/api/pricing' },
    });
    expect(table['o3-mini']).toMatchObject({ input: 1.0, cached_input: 0.55, output: 4.4, as_of: '2025-09-01', source: 'https://openai.com/api/pricing' });
    expect(table['gpt-4.1-mini'].output).toBe(1.6);
    expect(table['o4-mini']).toEqual(DEFAULT_PRICES['o4-mini']);
    expect(DEFAULT_PRICES['o3-mini'].input).toBe(1.1); // the defaults are not changed
  });

  it.each([
    [{ 'o3-mini': { input: -1 } }, 'prices.o3-mini.input'],
    [{ 'o3-mini': { output: '4.40' } }, 'prices.o3-mini.output'],
    [{ 'o3-mini': { as_of: 'June 2025' } }, 'prices.o3-mini.as_of'],
    [{ 'o3-mini': { input_price: 1 } }, 'prices.o3-mini.input_price'],
    [{ 'o3-mini': 5 }, 'prices.o3-mini'],
    [{ 'my-model': { input: 1, output: 2, as_of: '2025-06-01', source: 'x' } }, 'prices.my-model.cached_input'],
  ])('%j is refused naming %s', (overrides, param) => {
    const err = domainError(() => priceTable(overrides));
    expect(err.code).toBe('invalid_request');
    expect(err.param).toBe(param);
    expect(err.message.startsWith(`${param}: `)).toBe(true);
  });

  it('says a new model must give every field', () => {
    expect(domainError(() => priceTable({ 'my-model': { input: 1 } })).message).toBe('prices.my-model.cached_input: required for a model that is not in the default table');
  });

  it('refuses something other than an object', () => {
    expect(domainError(() => priceTable([])).param).toBe('prices');
    expect(domainError(() => priceTable(null)).param).toBe('prices');
  });

  it('dates each model: a retired one (o3-mini, o4-mini since 2026-10-23) warns, a current one does not', () => {
    expect(availabilityWarning(DEFAULT_PRICES, 'o3-mini', '2026-10-22')).toBeNull();
    expect(availabilityWarning(DEFAULT_PRICES, 'o3-mini', '2026-10-23')).toMatch(/^'o3-mini' was retired by its provider on 2026-10-23 \(price table, read 2025-06-01\)/);
    expect(availabilityWarning(DEFAULT_PRICES, 'o4-mini-2025-04-16', '2026-12-02')).toMatch(/retired/);
    expect(availabilityWarning(DEFAULT_PRICES, 'gpt-4o-mini', '2026-12-02')).toBeNull();
    expect(availabilityWarning(DEFAULT_PRICES, 'gpt-oss-20b', '2026-12-02')).toBeNull();
    expect(domainError(() => priceTable({ 'o3-mini': { available_until: '2020-01-01' } })).param).toBe('prices.o3-mini.available_until');
  });

  it('reads the example price file of current models (every entry dated)', () => {
    const file = JSON.parse(readFileSync(path.join(__dirname, '../../docs/evals/prices.example.json'), 'utf8')) as Record<string, { as_of: string }>;
    const table = priceTable(file);
    for (const model of Object.keys(file)) expect(table[model].as_of).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('finds a dated snapshot by its family name', () => {
    expect(priceOf(DEFAULT_PRICES, 'o3-mini-2025-01-31')).toBe(DEFAULT_PRICES['o3-mini']);
    expect(priceOf(DEFAULT_PRICES, 'gpt-4o-mini')).toBe(DEFAULT_PRICES['gpt-4o-mini']);
    // An OpenAI fine-tuned model is priced at its base's fine-tuned row, not at the stock model's.
    expect(priceOf(DEFAULT_PRICES, 'ft:gpt-4o-mini-2024-07-18:acme::AbC123')).toBe(DEFAULT_PRICES['ft:gpt-4o-mini']);
    expect(priceOf(DEFAULT_PRICES, 'ft:gpt-4o-mini-2024-07-18:acme::AbC123')).not.toBe(DEFAULT_PRICES['gpt-4o-mini']);
    expect(priceOf(DEFAULT_PRICES, 'ft:gpt-4.1-2025-04-14:acme::x')).toBeNull();
    expect(priceOf(DEFAULT_PRICES, 'gpt-oss-20b')).toBeNull();
  });
});
