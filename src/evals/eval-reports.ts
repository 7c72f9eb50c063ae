import { Injectable } from '@nestjs/common';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { buildComparison } from './comparison';
import { EvalsService } from './evals.service';
import { PriceTable, priceTable } from './prices';
import { Comparison, reportJson, reportMarkdown } from './report';
import { reportHtml } from './report-html';
import { parseScorerConfig } from './scorers';
import { SuiteItems } from './suite-items';
import { targetModelName } from './target-endpoints';

export type ReportFormat = 'json' | 'md' | 'html';

/** A run's comparison report (also while it runs: it covers the results so far). */
@Injectable()
export class EvalReports {
  private readonly prices: PriceTable;

  constructor(private readonly prisma: PrismaService, private readonly evals: EvalsService, private readonly items: SuiteItems, config: Config) {
    this.prices = priceTable(config.env.EVAL_PRICES ?? {});
  }

  async comparison(projectId: string, runId: string): Promise<Comparison> {
    const run = await this.evals.getRun(projectId, runId);
    const [items, targets, rows] = await Promise.all([
      this.items.load(projectId, run.suite.datasetId),
      this.prisma.evalTarget.findMany({ where: { id: { in: run.targetIds }, projectId } }),
      this.prisma.evalResult.findMany({ where: { runId: run.id } }),
    ]);
    const byId = new Map(targets.map((t) => [t.id, t]));
    const scorer = parseScorerConfig(run.suite.scorer);
    return buildComparison({
      suite: { name: run.suite.name, scorer: scorer.type },
      createdAt: run.createdAt,
      items,
      // A target deleted since keeps its id as its name; its rows still count.
      targets: run.targetIds.map((id) => {
        const t = byId.get(id);
        return t
          ? { id, name: t.name, kind: t.kind, model: targetModelName(t), usdPerGpuHour: t.usdPerGpuHour, gpus: t.gpus }
          : { id, name: id, kind: 'api' as const, model: 'deleted target', usdPerGpuHour: null, gpus: null };
      }),
      baselineTargetId: run.baselineTargetId,
      rows,
      prices: this.prices,
    });
  }

  async render(projectId: string, runId: string, format: ReportFormat): Promise<{ contentType: string; body: string }> {
    const c = await this.comparison(projectId, runId);
    switch (format) {
      case 'json':
        return { contentType: 'application/json; charset=utf-8', body: reportJson(c) };
      case 'md':
        return { contentType: 'text/markdown; charset=utf-8', body: reportMarkdown(c) };
      case 'html':
        return { contentType: 'text/html; charset=utf-8', body: reportHtml(c) };
    }
  }
}
