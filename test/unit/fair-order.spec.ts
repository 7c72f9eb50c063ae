import { fairOrder, QueuedJob } from '../../src/training/placement/fair-order';

const job = (id: string, projectId: string, priority: number, t: number): QueuedJob => ({ id, projectId, priority, createdAt: new Date(t) });

describe('fairOrder: who gets GPUs first', () => {
  it('higher priority first, whatever the project', () => {
    const order = fairOrder([job('a1', 'A', 0, 1), job('b1', 'B', 5, 2), job('a2', 'A', -1, 0)], new Map());
    expect(order.map((j) => j.id)).toEqual(['b1', 'a1', 'a2']);
  });

  it('at equal priority, projects take turns instead of first-come first-served', () => {
    // A queued five jobs before B queued one: B's job is second, not sixth.
    const queued = [1, 2, 3, 4, 5].map((t) => job(`a${t}`, 'A', 0, t)).concat([job('b1', 'B', 0, 10), job('c1', 'C', 0, 11), job('b2', 'B', 0, 12)]);
    expect(fairOrder(queued, new Map()).map((j) => j.id)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4', 'a5']);
  });

  it('a project already running jobs waits behind one that runs none', () => {
    const queued = [job('a1', 'A', 0, 1), job('b1', 'B', 0, 2)];
    expect(fairOrder(queued, new Map([['A', 2]])).map((j) => j.id)).toEqual(['b1', 'a1']);
    expect(fairOrder(queued, new Map([['B', 1]])).map((j) => j.id)).toEqual(['a1', 'b1']);
  });

  it('each project keeps its own jobs in creation order, ties broken by id', () => {
    const queued = [job('a2', 'A', 0, 5), job('a1', 'A', 0, 5), job('a0', 'A', 0, 9)];
    expect(fairOrder(queued, new Map()).map((j) => j.id)).toEqual(['a1', 'a2', 'a0']);
  });
});
