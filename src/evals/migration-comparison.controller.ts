import { Controller, Post } from '@nestjs/common';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { ApiDoc, ZBody } from '../common/http/zod-validation';
import { comparisonObject, comparisonView } from './comparisons.controller';
import { ComparisonsService } from './comparisons.service';
import { suiteObject, suiteView, targetObject, targetView } from './evals.views';
import { MigrationComparisons } from './migration-comparison';

const compareBody = z
  .object({
    api_key: z.string().min(1).max(4096).describe('the OpenAI key: stored sealed in the api target that calls the OpenAI fine-tuned model; never returned or logged'),
    job: z.string().min(1).max(200).describe('the loraplane job that recreated the OpenAI job (started from a migration plan)'),
    openai_job: z.string().min(1).max(200).optional().describe("the OpenAI job it recreated (default: the job's metadata.migrated_from)"),
    limit: z.number().int().min(1).max(10_000_000).optional().describe('a seeded sample of this many validation lines (default: all)'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
    scorer: z.enum(['exact_match', 'contains', 'regex', 'numeric']).default('exact_match'),
    max_tokens: z.number().int().min(1).max(200_000).default(1024),
  })
  .strict();
const migrationComparison = z.object({
  object: z.literal('migration.openai.comparison'),
  comparison: comparisonObject,
  suite: suiteObject,
  targets: z.object({ openai: targetObject, loraplane: targetObject }),
  report: z.string().describe("the comparison's report route (Markdown)"),
});

/** Migration from OpenAI fine-tuning, last step: the OpenAI fine-tuned model against its migrated adapter. */
@Controller('v1/migrations/openai')
export class MigrationComparisonController {
  constructor(private readonly migrations: MigrationComparisons, private readonly comparisons: ComparisonsService) {}

  @Post('compare')
  @ApiDoc({ summary: "Compare the OpenAI fine-tuned model (an api target with the caller's key) with the migrated job's deployed adapter on the OpenAI job's validation file; asking again returns the same comparison", tags: ['evals'], response: migrationComparison })
  async compare(@ProjectId() projectId: string, @ZBody(compareBody) b: z.infer<typeof compareBody>): Promise<z.infer<typeof migrationComparison>> {
    const m = await this.migrations.compare(projectId, { apiKey: b.api_key, job: b.job, openaiJob: b.openai_job, limit: b.limit, seed: b.seed, scorer: b.scorer, maxTokens: b.max_tokens });
    return {
      object: 'migration.openai.comparison' as const,
      comparison: comparisonView(m.comparison, await this.comparisons.progress(m.comparison)),
      suite: suiteView(m.suite),
      targets: { openai: targetView(m.targets.openai), loraplane: targetView(m.targets.loraplane) },
      report: `/v1/evals/comparisons/${m.comparison.id}/report?format=md`,
    };
  }
}
