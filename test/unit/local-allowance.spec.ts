import { LEASE_MS, leaseFor, LocalAllowances } from '../../src/limits/local-allowance';

/** The in-memory half of large limits: what a gateway may admit without asking Redis, and what it hands back. */
describe('LocalAllowances', () => {
  const given: [string, number][] = [];
  const giveBack = (key: string, _limit: number, tokens: number) => given.push([key, tokens]);
  beforeEach(() => (given.length = 0));

  it('grants nothing under small limits, 1 % of large ones', () => {
    expect([leaseFor(10), leaseFor(99), leaseFor(100), leaseFor(1e9)]).toEqual([0, 0, 1, 1e7]);
  });

  it('admits from a live grant, all buckets or none, and reports Redis level + what is held', () => {
    const local = new LocalAllowances();
    expect(local.take([{ key: 'r', cost: 1 }], 0)).toBeNull();
    expect(local.grant('r', 1000, 10, 900, 0, giveBack)).toBe(10);
    expect(local.grant('t', 100_000, 1000, 50_000, 0, giveBack)).toBe(1000);
    expect(local.take([{ key: 'r', cost: 1 }, { key: 't', cost: 300 }], 5)).toEqual([909, 50_700]);
    // Not enough tokens left in one bucket: none is debited.
    expect(local.take([{ key: 'r', cost: 1 }, { key: 't', cost: 800 }], 6)).toBeNull();
    expect(local.take([{ key: 'r', cost: 1 }], 7)).toEqual([908]);
    expect(local.spend('t', 700, 8)).toBe(true);
    expect(local.spend('t', 1, 8)).toBe(false);
  });

  it('hands back what an expired grant still holds, and never admits from it', () => {
    const local = new LocalAllowances();
    local.grant('r', 1000, 10, 900, 0, giveBack);
    local.take([{ key: 'r', cost: 1 }], 1);
    expect(local.take([{ key: 'r', cost: 1 }], LEASE_MS + 1)).toBeNull();
    local.expire(LEASE_MS + 1, giveBack);
    expect(given).toEqual([['r', 9]]);
    local.expire(LEASE_MS + 2, giveBack);
    expect(given).toHaveLength(1);
  });
});
