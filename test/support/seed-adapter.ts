import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { newId } from '../../src/common/ids';
import { PrismaService } from '../../src/db/prisma.service';

/**
 * Registers adapter files as the next version of `adapter` (source: import), as the registry would after a job: the
 * files in S3 under the version's prefix, the row with their sha256 and PEFT config. For e2e specs that train a tiny
 * adapter in-process instead of running a job.
 */
export async function seedAdapterVersion(
  ctx: { prisma: PrismaService; s3: S3Client; bucket: string; projectId: string },
  adapter: string,
  files: { name: string; data: Buffer }[],
): Promise<number> {
  const { prisma, s3, bucket, projectId } = ctx;
  const config = JSON.parse(files.find((f) => f.name === 'adapter_config.json')!.data.toString()) as Record<string, unknown>;
  const row = await prisma.adapter.upsert({ where: { projectId_name: { projectId, name: adapter } }, update: {}, create: { id: newId.adapter(), projectId, name: adapter } });
  const version = (await prisma.adapterVersion.count({ where: { adapterId: row.id } })) + 1;
  const id = newId.adapterVersion();
  const prefix = `projects/${projectId}/adapters/${row.id}/${id}/`;
  for (const f of files) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + f.name, Body: f.data }));
  await prisma.adapterVersion.create({
    data: {
      id, adapterId: row.id, projectId, version, s3Prefix: prefix, source: 'import', importedFrom: 'test',
      files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex') })),
      peftConfig: config as object, baseModel: String(config.base_model_name_or_path), rank: Number(config.r), targetModules: config.target_modules as string[],
    },
  });
  return version;
}
