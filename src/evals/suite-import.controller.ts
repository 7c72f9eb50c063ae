import { Controller, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import { ProjectId } from '../common/auth/auth.decorators';
import { DomainError } from '../common/domain-error';
import { ApiDoc, fieldPath } from '../common/http/zod-validation';
import { readMultipart } from '../datasets/multipart-upload';
import { BENCHMARK_FORMATS } from './benchmarks/benchmark-formats';
import { ImportOptions, SuiteImporter } from './benchmarks/suite-importer';
import { suiteObject, suiteView } from './evals.views';

const count = (max: number) => z.coerce.number().int().min(0).max(max);
export const importForm = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ - (at most 63)'),
    format: z.enum(BENCHMARK_FORMATS).describe('mmlu (original CSV or Hugging Face JSONL), gsm8k, arc (original or Hugging Face JSONL), hellaswag, chat'),
    limit: count(10_000_000).refine((n) => n > 0, 'must be at least 1').optional().describe('a seeded uniform sample of this many records'),
    seed: count(2 ** 31 - 1).default(0),
    shots: count(25).default(0).describe("k solved examples before each question, the first k records of 'dev'"),
    dev: z.string().optional().describe('the dev file (same format), for shots'),
    scorer: z.enum(['exact_match', 'contains', 'regex', 'numeric']).optional().describe('chat only (default exact_match)'),
    file: z.string().optional().describe('the benchmark file (binary part, sent after the fields)'),
  })
  .strict();

function parseForm(fields: Readonly<Record<string, string>>): ImportOptions {
  const parsed = importForm.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue.code === 'unrecognized_keys' ? issue.keys[0] : fieldPath(issue.path);
    const missing = issue.code === 'invalid_type' && fields[param] === undefined;
    throw new DomainError('invalid_request', missing ? `Missing '${param}': send the form fields before 'file'` : `'${param}': ${issue.message}`, param);
  }
  const { file: _file, ...options } = parsed.data;
  return options;
}

/** Benchmark files (MMLU, GSM8K, ARC, HellaSwag, chat) imported as eval suites. */
@Controller('v1/evals/suites/import')
export class SuiteImportController {
  constructor(private readonly importer: SuiteImporter) {}

  @Post()
  @ApiDoc({ summary: "Import a benchmark file as it is published; the answer is the suite, `items` = its records (form fields before 'file')", tags: ['evals'], multipartBody: importForm, response: suiteObject })
  async import(@ProjectId() projectId: string, @Req() req: Request) {
    const { file } = await readMultipart(
      req,
      'file',
      // async: a bad field rejects the promise (readMultipart answers 400) rather than throwing in busboy's handler.
      async (filename, stream, fields) => this.importer.stage(projectId, filename, stream, parseForm(fields)),
      (staged) => this.importer.discard(staged),
    );
    if (!file) throw new DomainError('invalid_request', "Missing required parameter: 'file'", 'file');
    return suiteView(await this.importer.finish(projectId, file.result));
  }
}
