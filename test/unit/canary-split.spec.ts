import { chooseArm, stickyBucket, stickyKeyOf } from '../../src/serving/canary-split';

/** A seeded generator (mulberry32), so the unkeyed split is tested on the same draws every run. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('canary request split', () => {
  it.each([10, 30, 50, 90])('sends %d %% of 1,000 users to the canary within +-5 points, each user always to the same arm', (share) => {
    const split = { salt: 'alias-abc:adver-v2', requestShare: share };
    const first = new Map<string, string>();
    for (let i = 0; i < 1000; i++) first.set(`user-${i}`, chooseArm(split, stickyKeyOf(undefined, `user-${i}`)));
    const canary = [...first.values()].filter((a) => a === 'canary').length;
    expect(Math.abs((canary / 1000) * 100 - share)).toBeLessThanOrEqual(5);
    // Stickiness: every later request of the same user (here 4 more each) lands on its first arm.
    let same = 0;
    for (let round = 0; round < 4; round++) {
      for (const [user, arm] of first) if (chooseArm(split, stickyKeyOf(undefined, user)) === arm) same++;
    }
    expect(same).toBe(4000);
  });

  it('keeps a session on one arm and prefers the session header over the user field', () => {
    const split = { salt: 's', requestShare: 50 };
    const arms = new Set<string>();
    for (let i = 0; i < 200; i++) arms.add(chooseArm(split, stickyKeyOf('conv-42', `user-${i}`)));
    expect(arms.size).toBe(1);
    expect(stickyKeyOf(['conv-1', 'conv-2'], 'u')).toBe('s:conv-1');
    expect(stickyKeyOf(undefined, '')).toBeNull();
    expect(stickyKeyOf(undefined, 42)).toBeNull();
  });

  it('draws a fresh set of users for the next canary (the salt changes the buckets)', () => {
    const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const a = users.map((u) => chooseArm({ salt: 'alias:v2', requestShare: 20 }, `u:${u}`));
    const b = users.map((u) => chooseArm({ salt: 'alias:v3', requestShare: 20 }, `u:${u}`));
    const both = a.filter((arm, i) => arm === 'canary' && b[i] === 'canary').length;
    // Independent draws overlap on about 20 % x 20 % = 4 % of users; the same salt would overlap on 20 %.
    expect(both).toBeLessThan(80);
    expect(both).toBeGreaterThan(10);
  });

  it('splits requests without a sticky key at random, within +-5 points over 1,000', () => {
    const random = seeded(7);
    let canary = 0;
    for (let i = 0; i < 1000; i++) if (chooseArm({ salt: 'x', requestShare: 25 }, null, random) === 'canary') canary++;
    expect(Math.abs(canary / 10 - 25)).toBeLessThanOrEqual(5);
  });

  it('honours the ends: 0 % never, 100 % always', () => {
    for (let i = 0; i < 100; i++) {
      expect(chooseArm({ salt: 'x', requestShare: 0 }, `u:${i}`)).toBe('stable');
      expect(chooseArm({ salt: 'x', requestShare: 100 }, `u:${i}`)).toBe('canary');
    }
    expect(stickyBucket('x', 'u:1')).toBeGreaterThanOrEqual(0);
    expect(stickyBucket('x', 'u:1')).toBeLessThan(1_000_000);
  });
});
