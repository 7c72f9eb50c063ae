import { LEASE_MS, leaseFor, LimitPlan, SharedBucket } from '../../src/limits/local-allowance';

/** The in-memory half of large limits: what a gateway may admit without asking Redis, and what it hands back. */
describe('local allowances (SharedBucket, LimitPlan)', () => {
  const given: [string, number][] = [];
  const giveBack = (b: SharedBucket, tokens: number) => given.push([b.key, tokens]);
  beforeEach(() => (given.length = 0));

  it('grants nothing under small limits, 1 % of large ones', () => {
    expect([leaseFor(10), leaseFor(99), leaseFor(100), leaseFor(1e9)]).toEqual([0, 0, 1, 1e7]);
  });

  it('admits from live grants, all buckets or none, and reports Redis level + what is held', () => {
    const r = new SharedBucket('r', 'requests', 1000);
    const t = new SharedBucket('t', 'tokens', 100_000);
    const plan = new LimitPlan([r, t]);
    expect(plan.take(300, 0)).toBe(false); // nothing held yet
    expect(r.grant(10, 900, 0, giveBack)).toBe(10);
    expect(t.grant(1000, 50_000, 0, giveBack)).toBe(1000);
    expect(plan.take(300, 5)).toBe(true); // 1 request, 300 tokens
    expect([r.remaining, t.remaining]).toEqual([909, 50_700]);
    // Not enough tokens left in one bucket: none is debited.
    expect(plan.take(800, 6)).toBe(false);
    expect([r.remaining, t.remaining]).toEqual([909, 50_700]);
    expect(new LimitPlan([r]).take(1, 7)).toBe(true);
    expect(r.remaining).toBe(908);
    expect(t.spend(700, 8)).toBe(true);
    expect(t.spend(1, 8)).toBe(false);
    expect(given).toEqual([]);
  });

  it('hands back what an expired grant still holds, and never admits from it', () => {
    const r = new SharedBucket('r', 'requests', 1000);
    r.grant(10, 900, 0, giveBack);
    const plan = new LimitPlan([r]);
    plan.take(1, 1);
    expect(plan.take(1, LEASE_MS + 1)).toBe(false);
    r.expire(LEASE_MS + 1, giveBack);
    expect(given).toEqual([['r', 9]]);
    r.expire(LEASE_MS + 2, giveBack);
    expect(given).toHaveLength(1);
    // A new grant after an expired one hands the old rest back first and starts a fresh lease.
    r.grant(5, 800, 0, giveBack);
    expect(r.grant(20, 700, 3 * LEASE_MS, giveBack)).toBe(20);
    expect(given).toEqual([['r', 9], ['r', 5]]);
    expect(r.covers(20, 3 * LEASE_MS + 10)).toBe(true);
  });

  it('never reports more left than the limit, though Redis refills while a grant is out', () => {
    const t = new SharedBucket('t', 'tokens', 100_000);
    t.grant(1000, 99_500, 0, giveBack);
    expect(t.remaining).toBe(100_000);
    expect(t.resetText()).toBe('0ms');
    t.held = 200;
    expect(t.remaining).toBe(99_700);
  });

  it('keeps its limit and reset spelled for the headers, and follows a changed limit', () => {
    const r = new SharedBucket('r', 'requests', 60);
    r.grant(0, 30, 0, giveBack);
    expect([r.limitText, r.resetText()]).toEqual(['60', '30s']);
    r.limit = 120;
    expect([r.limitText, r.resetText()]).toEqual(['120', '45s']);
    r.grant(0, 119.9, 0, giveBack);
    expect(r.resetText()).toBe('50ms');
  });
});
