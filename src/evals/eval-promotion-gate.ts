import { Injectable } from '@nestjs/common';
import { PrismaService } from '../db/prisma.service';
import { PromotionGate, PromotionRequest, PromotionVerdict } from '../serving/promotion-gate';
import { servedName } from '../serving/served-name';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * The promotion gate evals provide: when a gate is configured for the alias (or its pool), the candidate version's
 * latest finished run of the gate's suite must put it at least `minMargin` accuracy points above the baseline
 * target in that same run. The candidate is evaluated as an adapter target of the pool with that exact version
 * (`name@vN`: an alias target measures whatever the alias served at the time, not the candidate). No gate: allowed.
 */
@Injectable()
export class EvalPromotionGate extends PromotionGate {
  constructor(private readonly prisma: PrismaService) {
    super();
  }

  async check(req: PromotionRequest): Promise<PromotionVerdict> {
    const gates = await this.prisma.evalGate.findMany({
      where: { projectId: req.projectId, poolId: req.pool.id, adapterName: { in: [req.adapter, '*'] } },
      include: { suite: { select: { name: true } } },
    });
    const gate = gates.find((g) => g.adapterName === req.adapter) ?? gates.find((g) => g.adapterName === '*');
    if (!gate) return { allowed: true };
    const label = servedName(req.adapter, req.candidate.version);
    const baseline = await this.prisma.evalTarget.findFirst({ where: { id: gate.baselineTargetId, projectId: req.projectId }, select: { name: true } });
    const baselineName = baseline?.name ?? gate.baselineTargetId;
    const candidates = await this.prisma.evalTarget.findMany({
      where: { projectId: req.projectId, kind: 'adapter', poolId: req.pool.id, model: req.adapter, adapterVersion: req.candidate.version },
      select: { id: true },
    });
    const ids = candidates.map((c) => c.id);
    const run = ids.length
      ? await this.prisma.evalRun.findFirst({
          where: { projectId: req.projectId, suiteId: gate.suiteId, status: 'succeeded', AND: [{ targetIds: { has: gate.baselineTargetId } }, { targetIds: { hasSome: ids } }] },
          orderBy: [{ finishedAt: 'desc' }, { id: 'desc' }],
        })
      : null;
    if (!run) {
      return { allowed: false, reason: `the gate needs a finished run of suite '${gate.suite.name}' with an adapter target for ${label} on pool '${req.pool.name}' and the baseline '${baselineName}'; there is none` };
    }
    const candidateId = run.targetIds.find((id) => ids.includes(id))!;
    const rate = async (targetId: string) => {
      const [n, k] = await Promise.all([
        this.prisma.evalResult.count({ where: { runId: run.id, targetId } }),
        this.prisma.evalResult.count({ where: { runId: run.id, targetId, correct: true } }),
      ]);
      return n === 0 ? 0 : k / n;
    };
    const [cand, base] = await Promise.all([rate(candidateId), rate(gate.baselineTargetId)]);
    const margin = cand - base;
    // A hair of tolerance: 0.6 - 0.5 is 0.09999999999999998 in floating point.
    if (margin + 1e-9 >= gate.minMargin) return { allowed: true };
    return {
      allowed: false,
      reason: `on suite '${gate.suite.name}' (run ${run.id}) ${label} scored ${pct(cand)} vs ${pct(base)} for baseline '${baselineName}': ${margin >= 0 ? '+' : ''}${(margin * 100).toFixed(1)} points, the gate requires at least +${(gate.minMargin * 100).toFixed(1)}`,
    };
  }
}
