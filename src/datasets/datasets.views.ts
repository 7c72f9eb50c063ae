import { z } from 'zod';
import { Dataset } from '../generated/prisma/client';
import type { DatasetStats, StoredReport } from './datasets.service';
import { DATASET_FORMATS, VALIDATION_CODES, ValidationError, ValidationReport } from './validation/dataset-validator';
import { TokenStatsJson } from './validation/token-stats';
import type { Assert, Same } from '../common/type-equality';

/**
 * API shapes of the native dataset routes, each with its schema: the routes document them, so the CLI and the
 * dashboard read them through the generated types.
 */
const validationError = z.object({ line: z.number().nullable(), path: z.string().nullable().describe('the field, e.g. messages[0].role'), code: z.enum(VALIDATION_CODES), message: z.string() });
const tokenStats = z.object({
  total: z.number().describe('o200k_harmony tokens of every example as harmony renders it'),
  per_role: z.record(z.string(), z.number()),
  min_example: z.number(),
  max_example: z.number(),
  max_example_line: z.number().nullable(),
  mean_example: z.number(),
  histogram: z.record(z.string(), z.number()).describe('examples per length bucket: "<=64" ... ">131072"'),
  estimated_trained_tokens: z.record(z.string(), z.number()).describe('per number of epochs, 1 to 5'),
  tokenizer: z.literal('o200k_harmony'),
});

/** What ingest stores on the dataset (datasets.service.ts toStats, toStoredReport). */
const datasetStats = z.object({
  examples: z.number(),
  lines: z.number(),
  format: z.enum(DATASET_FORMATS).nullable(),
  role_counts: z.record(z.string(), z.number()),
  tokens: tokenStats.nullable(),
  tokens_pending: z.boolean().describe('true until the worker has counted the tokens of a large file'),
  longest_answer: z.object({ bytes: z.number(), line: z.number() }).nullable().optional().describe('absent in datasets validated before it existed'),
});
const storedReport = z.object({ valid: z.boolean(), error_count: z.number(), errors: z.array(validationError).describe('the first errors; error_count counts them all') });

export const datasetObject = z.object({
  id: z.string(),
  object: z.literal('dataset'),
  filename: z.string(),
  purpose: z.string(),
  bytes: z.number(),
  sha256: z.string(),
  format: z.string(),
  status: z.enum(['ready', 'invalid']),
  created_at: z.number(),
  stats: datasetStats.nullable(),
  report: storedReport.nullable(),
});

export function toDatasetObject(d: Dataset): z.infer<typeof datasetObject> {
  return {
    id: d.id,
    object: 'dataset',
    filename: d.filename,
    purpose: d.purpose,
    bytes: Number(d.bytes),
    sha256: d.sha256,
    format: d.format,
    status: d.status,
    created_at: Math.floor(d.createdAt.getTime() / 1000),
    // Written whole at ingest (the worker only fills in a deferred token count).
    stats: d.stats as z.infer<typeof datasetStats> | null,
    report: d.report as z.infer<typeof storedReport> | null,
  };
}

/** The dry run's answer (POST /v1/datasets/validate). */
export const validationObject = z.object({
  object: z.literal('dataset.validation'),
  valid: z.boolean(),
  format: z.enum(DATASET_FORMATS).nullable(),
  bytes: z.number(),
  sha256: z.string(),
  error_count: z.number(),
  errors: z.array(validationError).describe('the first errors; error_count counts them all'),
  stats: z.object({
    examples: z.number(),
    lines: z.number(),
    role_counts: z.record(z.string(), z.number()),
    tokens: tokenStats.nullable().describe('null when counting was deferred (a file beyond the inline budget)'),
  }),
});

export function toValidationObject(r: { bytes: number; sha256: string; report: ValidationReport }): z.infer<typeof validationObject> {
  const { report } = r;
  return {
    object: 'dataset.validation',
    valid: report.valid,
    format: report.format,
    bytes: r.bytes,
    sha256: r.sha256,
    error_count: report.errorCount,
    errors: report.errors,
    stats: { examples: report.examples, lines: report.lines, role_counts: report.roleCounts, tokens: report.tokens },
  };
}

/** Compile-time only: each schema describes exactly the validator's interface. */
export type SchemaMatchesInterfaces = [
  Assert<Same<z.infer<typeof validationError>, ValidationError>>,
  Assert<Same<z.infer<typeof tokenStats>, TokenStatsJson>>,
  Assert<Same<z.infer<typeof storedReport>, StoredReport>>,
  Assert<Same<Required<z.infer<typeof datasetStats>>, Required<DatasetStats>>>,
];
