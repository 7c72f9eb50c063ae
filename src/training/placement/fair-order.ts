/** A job waiting for GPUs, as the placement order sees it. */
export interface QueuedJob {
  id: string;
  projectId: string;
  priority: number;
  createdAt: Date;
}

/**
 * The order queued jobs get GPUs in: higher priority first; at equal priority, the project that holds the fewest
 * GPU jobs (running, plus those already ordered ahead) goes next, each project's own jobs first-in first-out. So a
 * project that queues fifty jobs does not keep another project's single job waiting behind all of them.
 */
export function fairOrder<T extends QueuedJob>(queued: T[], runningPerProject: Map<string, number>): T[] {
  const load = new Map(runningPerProject);
  const byAge = (a: T, b: T) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const left = [...queued].sort((a, b) => b.priority - a.priority || byAge(a, b));
  const out: T[] = [];
  while (left.length > 0) {
    const top = left[0].priority;
    let best = 0;
    for (let i = 1; i < left.length && left[i].priority === top; i++) {
      const [mine, theirs] = [load.get(left[i].projectId) ?? 0, load.get(left[best].projectId) ?? 0];
      // `left` is in age order within a priority, so the first job seen of the least-loaded project is its oldest.
      if (mine < theirs) best = i;
    }
    const [next] = left.splice(best, 1);
    out.push(next);
    load.set(next.projectId, (load.get(next.projectId) ?? 0) + 1);
  }
  return out;
}
