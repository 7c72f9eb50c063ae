import { z } from 'zod';
import type { Adapter, AdapterVersion } from '../generated/prisma/client';
import { servedName } from '../serving/served-name';
import { readHyperparameters, resolvedHyperparametersSchema } from '../training/hyperparameters';

/**
 * API shapes of the registry (snake_case, unix seconds), each with its schema: the routes document them, so the CLI
 * and the dashboard read them through the generated types.
 */
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const record = z.record(z.string(), z.unknown());
const fileEntry = z.object({ name: z.string(), bytes: z.number(), sha256: z.string() });

export const adapterObject = z.object({
  object: z.literal('adapter'),
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  created_at: z.number(),
  latest_version: z.number().nullable(),
});

export function adapterView(a: Adapter & { versions: { version: number }[] }): z.infer<typeof adapterObject> {
  return { object: 'adapter', id: a.id, name: a.name, description: a.description, created_at: seconds(a.createdAt), latest_version: a.versions[0]?.version ?? null };
}

export const versionObject = z.object({
  object: z.literal('adapter.version'),
  id: z.string(),
  adapter: z.string(),
  version: z.number(),
  served_name: z.string().describe('the immutable name a serving pool loads it under: adapter@vN'),
  base_model: z.string(),
  rank: z.number(),
  target_modules: z.array(z.string()),
  files: z.array(fileEntry),
  peft_config: record.describe('adapter_config.json as registered'),
  lineage: z.object({
    source: z.enum(['job', 'checkpoint', 'import']),
    job_id: z.string().nullable(),
    checkpoint_id: z.string().nullable(),
    dataset_id: z.string().nullable(),
    hyperparameters: resolvedHyperparametersSchema.nullable().describe("the job's resolved hyperparameters when the version was registered"),
    imported_from: z.string().nullable().describe("imports: the tarball's file name or the s3:// prefix"),
  }),
  created_at: z.number(),
  download: z.array(z.object({ name: z.string(), url: z.string() })).optional().describe('GET of one version only: presigned URLs of its files'),
});

export function versionView(adapter: Pick<Adapter, 'name'>, v: AdapterVersion, downloads?: { name: string; url: string }[]): z.infer<typeof versionObject> {
  return {
    object: 'adapter.version' as const,
    id: v.id,
    adapter: adapter.name,
    version: v.version,
    served_name: servedName(adapter.name, v.version),
    base_model: v.baseModel,
    rank: v.rank,
    target_modules: v.targetModules,
    // JSON columns written whole by the registry: [{ name, bytes, sha256 }], adapter_config.json.
    files: v.files as z.infer<typeof fileEntry>[],
    peft_config: v.peftConfig as z.infer<typeof record>,
    lineage: {
      source: v.source,
      job_id: v.jobId,
      checkpoint_id: v.checkpointId,
      dataset_id: v.datasetId,
      hyperparameters: v.hyperparameters === null ? null : readHyperparameters({ hyperparameters: v.hyperparameters, method: null }),
      imported_from: v.importedFrom,
    },
    created_at: seconds(v.createdAt),
    ...(downloads ? { download: downloads.map((d) => ({ name: d.name, url: d.url })) } : {}),
  };
}

export const deletedVersion = z.object({ object: z.literal('adapter.version.deleted'), adapter: z.string(), version: z.number(), deleted: z.literal(true) });
