import { Injectable } from '@nestjs/common';
import { PrismaService } from '../db/prisma.service';
import { buildComparison, ComparisonInput } from './comparison';
import { EvalItem, promptText } from './eval-item';
import { EvalsService } from './evals.service';
import { EvalPrices } from './eval-prices';
import { Comparison, reportJson, reportMarkdown } from './report';
import { reportHtml } from './report-html';
import { parseScorerConfig } from './scorers';
import { SuiteItems } from './suite-items';
import { targetModelName } from './target-endpoints';

export type ReportFormat = 'json' | 'md' | 'html';

/** Characters of a prompt a report shows (the diff lists prompts; a benchmark's k-shot prompt runs to pages). */
const PROMPT_CHARS = 300;

/** A run's comparison report (also while it runs: it covers the results so far). */
@Injectable()
export class EvalReports {
  constructor(private readonly prisma: PrismaService, private readonly evals: EvalsService, private readonly items: SuiteItems, private readonly prices: EvalPrices) {}

  async comparison(projectId: string, runId: string): Promise<Comparison> {
    return buildComparison(await this.input(projectId, runId));
  }

  /** What buildComparison needs for one run; comparisons across suites combine several. */
  async input(projectId: string, runId: string): Promise<ComparisonInput> {
    const run = await this.evals.getRun(projectId, runId);
    const [items, targets, rows] = await Promise.all([
      this.prompts(projectId, run.suite.datasetId),
      this.prisma.evalTarget.findMany({ where: { id: { in: run.targetIds }, projectId }, include: { pool: { select: { usdPerGpuHour: true, gpusPerReplica: true } } } }),
      this.prisma.evalResult.findMany({ where: { runId: run.id } }),
    ]);
    const byId = new Map(targets.map((t) => [t.id, t]));
    const scorer = parseScorerConfig(run.suite.scorer);
    return {
      suite: { name: run.suite.name, scorer: scorer.type },
      createdAt: run.createdAt,
      items,
      // A target deleted since keeps its id as its name; its rows still count.
      targets: run.targetIds.map((id) => {
        const t = byId.get(id);
        return t
          ? // A target's own GPU price wins over its pool's.
            { id, name: t.name, kind: t.kind, model: targetModelName(t), usdPerGpuHour: t.usdPerGpuHour ?? t.pool?.usdPerGpuHour ?? null, gpus: t.gpus ?? t.pool?.gpusPerReplica ?? null }
          : { id, name: id, kind: 'api' as const, model: 'deleted target', usdPerGpuHour: null, gpus: null };
      }),
      baselineTargetId: run.baselineTargetId,
      rows,
      prices: this.prices.table,
    };
  }

  /** Each item's prompt as text, cut to what the per-item diff shows: the request never holds the dataset. */
  private async prompts(projectId: string, datasetId: string): Promise<EvalItem[]> {
    const out: EvalItem[] = [];
    for await (const item of this.items.stream(projectId, datasetId)) {
      const text = promptText(item.prompt);
      out.push({ prompt: text.length > PROMPT_CHARS ? `${text.slice(0, PROMPT_CHARS - 1)}\u2026` : text });
    }
    return out;
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
