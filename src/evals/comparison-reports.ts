import { Injectable } from '@nestjs/common';
import { buildComparison } from './comparison';
import { benchmarkReportHtml, benchmarkReportMarkdown, BenchmarkReport, buildBenchmarkReport } from './comparison-report';
import { comparisonStatus, ComparisonsService } from './comparisons.service';
import { EvalPrices } from './eval-prices';
import { EvalReports, ReportFormat } from './eval-reports';
import { sortedJson } from './report';

/** A comparison's report across its suites (also while it runs: it covers the results so far). */
@Injectable()
export class ComparisonReports {
  constructor(private readonly comparisons: ComparisonsService, private readonly reports: EvalReports, private readonly prices: EvalPrices) {}

  async report(projectId: string, ref: string): Promise<BenchmarkReport> {
    const c = await this.comparisons.get(projectId, ref);
    const inputs = [];
    for (const run of c.runs) inputs.push(await this.reports.input(projectId, run.id));
    const suites = inputs.map((i) => buildComparison(i));
    // Every suite's rows as one list (item indexes kept apart), so latency percentiles, tokens, throughput and cost
    // are measured over the whole comparison rather than averaged per suite.
    let offset = 0;
    const rows = inputs.flatMap((i) => {
      const shifted = i.rows.map((r) => ({ ...r, itemIndex: r.itemIndex + offset }));
      offset += i.items.length;
      return shifted;
    });
    const first = inputs[0];
    const overall = buildComparison({ ...first, suite: { name: c.name, scorer: 'all' }, items: [], rows });
    const warnings = first.targets.flatMap((t) => {
      const w = t.kind === 'api' ? this.prices.warningFor(t.model) : null;
      return w ? [`${t.name}: ${w}`] : [];
    });
    return buildBenchmarkReport({
      name: c.name,
      status: comparisonStatus(c.runs),
      created_at: c.createdAt.toISOString(),
      baseline: first.targets.find((t) => t.id === c.baselineTargetId)?.name ?? null,
      targets: first.targets.map((t) => ({ name: t.name, kind: t.kind, model: t.model, usd_per_gpu_hour: t.usdPerGpuHour, gpus: t.gpus })),
      suites,
      overall,
      warnings,
    });
  }

  async render(projectId: string, ref: string, format: ReportFormat): Promise<{ contentType: string; body: string }> {
    const r = await this.report(projectId, ref);
    switch (format) {
      case 'json':
        return { contentType: 'application/json; charset=utf-8', body: sortedJson(r) };
      case 'md':
        return { contentType: 'text/markdown; charset=utf-8', body: benchmarkReportMarkdown(r) };
      case 'html':
        return { contentType: 'text/html; charset=utf-8', body: benchmarkReportHtml(r) };
    }
  }
}
