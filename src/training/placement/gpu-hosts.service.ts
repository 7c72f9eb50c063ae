import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { DomainError, notFound } from '../../common/domain-error';
import { newId } from '../../common/ids';
import { PrismaService } from '../../db/prisma.service';
import { GpuAllocation, GpuHost, Prisma } from '../../generated/prisma/client';

export const gpuInventory = z
  .array(z.object({ index: z.number().int().min(0).max(255), model: z.string().min(1).max(100), memory_gb: z.number().positive().max(4096) }))
  .min(1)
  .max(64)
  .refine((gpus) => new Set(gpus.map((g) => g.index)).size === gpus.length, 'each GPU index may appear once');

const engineUrl = z
  .string()
  .regex(/^(unix:\/\/\/.+|tcp:\/\/[^/\s:]+(:\d{1,5})?)$/, 'unix:///path/to/docker.sock or tcp://host:port');

/** TLS files on the worker's machine; the API never takes key material itself. */
const tlsPaths = z.object({ ca: z.string().startsWith('/'), cert: z.string().startsWith('/'), key: z.string().startsWith('/') });

export const registerHostBody = z
  .object({
    name: z.string().min(1).max(64).regex(/^[a-zA-Z0-9._-]+$/, 'letters, digits, ., _ and - only'),
    engine_url: engineUrl,
    tls: tlsPaths.nullish(),
    gpus: gpuInventory,
    usd_per_gpu_hour: z.number().min(0).max(10_000).default(0),
    enabled: z.boolean().default(true),
  })
  .refine((b) => !b.tls || b.engine_url.startsWith('tcp://'), { message: 'tls applies to tcp:// engines only', path: ['tls'] });
export type RegisterHostBody = z.infer<typeof registerHostBody>;

export const updateHostBody = z.object({
  gpus: gpuInventory.optional(),
  usd_per_gpu_hour: z.number().min(0).max(10_000).optional(),
  enabled: z.boolean().optional(),
});
export type UpdateHostBody = z.infer<typeof updateHostBody>;

export interface GpuSpec {
  index: number;
  model: string;
  memory_gb: number;
}

export type HostWithAllocations = GpuHost & { allocations: GpuAllocation[] };

/** The operator's registry of Docker engines with GPUs. Hosts are not tenant data: admin keys only. */
@Injectable()
export class GpuHostsService {
  constructor(private readonly prisma: PrismaService) {}

  async register(body: RegisterHostBody): Promise<HostWithAllocations> {
    const existing = await this.prisma.gpuHost.findUnique({ where: { name: body.name } });
    if (existing) throw new DomainError('invalid_request', `A GPU host named '${body.name}' is already registered (${existing.id})`, 'name');
    try {
      return await this.prisma.gpuHost.create({
        data: {
          id: newId.gpuHost(),
          name: body.name,
          engineUrl: body.engine_url,
          tls: body.tls ?? undefined,
          gpus: body.gpus,
          usdPerGpuHour: body.usd_per_gpu_hour,
          enabled: body.enabled,
        },
        include: { allocations: true },
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'P2002') throw new DomainError('invalid_request', `A GPU host named '${body.name}' is already registered`, 'name');
      throw err;
    }
  }

  list(): Promise<HostWithAllocations[]> {
    return this.prisma.gpuHost.findMany({ orderBy: { createdAt: 'asc' }, include: { allocations: true } });
  }

  async get(id: string): Promise<HostWithAllocations> {
    const host = await this.prisma.gpuHost.findUnique({ where: { id }, include: { allocations: true } });
    if (!host) throw notFound('GPU host', id, 'host_id');
    return host;
  }

  async update(id: string, body: UpdateHostBody): Promise<HostWithAllocations> {
    return this.prisma.$transaction(async (tx) => {
      // Same lock as placement: an inventory change never interleaves with a placement on this host.
      const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "GpuHost" WHERE id = ${id} FOR UPDATE`;
      if (!locked.length) throw notFound('GPU host', id, 'host_id');
      if (body.gpus) {
        const held = await tx.gpuAllocation.findMany({ where: { hostId: id } });
        const kept = new Set(body.gpus.map((g) => g.index));
        const lost = held.filter((a) => !kept.has(a.gpuIndex));
        if (lost.length) {
          throw new DomainError('invalid_state', `GPU ${lost[0].gpuIndex} is allocated to ${lost[0].jobId}; it cannot leave the inventory while in use`, 'gpus');
        }
      }
      const data: Prisma.GpuHostUpdateInput = {};
      if (body.gpus) data.gpus = body.gpus;
      if (body.usd_per_gpu_hour !== undefined) data.usdPerGpuHour = body.usd_per_gpu_hour;
      if (body.enabled !== undefined) data.enabled = body.enabled;
      return tx.gpuHost.update({ where: { id }, data, include: { allocations: true } });
    });
  }

  async remove(id: string): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "GpuHost" WHERE id = ${id} FOR UPDATE`;
      if (!locked.length) throw notFound('GPU host', id, 'host_id');
      const held = await tx.gpuAllocation.findFirst({ where: { hostId: id } });
      if (held) throw new DomainError('invalid_state', `GPU host ${id} runs ${held.jobId}; disable it and wait for its jobs to end`, 'host_id');
      await tx.gpuHost.delete({ where: { id } });
    });
  }
}

/** A host as the admin routes answer it: documented, so the CLI and the dashboard read it through the generated types. */
export const gpuHostObject = z.object({
  id: z.string(),
  object: z.literal('gpu_host'),
  name: z.string(),
  engine_url: z.string(),
  tls: tlsPaths.nullable(),
  usd_per_gpu_hour: z.number(),
  enabled: z.boolean(),
  created_at: z.number(),
  gpus: z.array(z.object({ index: z.number(), model: z.string(), memory_gb: z.number(), job_id: z.string().nullable().describe('the job holding it') })),
});

export function toHostObject(host: HostWithAllocations): z.infer<typeof gpuHostObject> {
  const byGpu = new Map(host.allocations.map((a) => [a.gpuIndex, a.jobId]));
  return {
    id: host.id,
    object: 'gpu_host' as const,
    name: host.name,
    engine_url: host.engineUrl,
    // Paths only, never the files' content.
    tls: (host.tls as z.infer<typeof tlsPaths> | null) ?? null,
    usd_per_gpu_hour: host.usdPerGpuHour,
    enabled: host.enabled,
    created_at: Math.floor(host.createdAt.getTime() / 1000),
    gpus: (host.gpus as unknown as GpuSpec[]).map((g) => ({ ...g, job_id: byGpu.get(g.index) ?? null })),
  };
}
