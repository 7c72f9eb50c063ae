import { Injectable, Logger } from '@nestjs/common';
import { ProjectKeyScope } from '../common/auth/auth.decorators';
import { DomainError, notFound } from '../common/domain-error';
import { afterRow, PageQuery } from '../common/http/pagination';
import { newId, randomId } from '../common/ids';
import { Config } from '../config/config';
import { PrismaService } from '../db/prisma.service';
import { ApiKeysService, CreatedKey } from './api-keys.service';

export const DEFAULT_PROJECT_SLUG = 'default';

export function slugify(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return slug || 'project';
}

@Injectable()
export class ProjectsService {
  private readonly logger = new Logger(ProjectsService.name);

  constructor(private readonly prisma: PrismaService, private readonly keys: ApiKeysService, private readonly config: Config) {}

  async create(name: string): Promise<{ project: { id: string; name: string; slug: string; createdAt: Date }; apiKey: CreatedKey }> {
    const base = slugify(name);
    const taken = await this.prisma.project.findUnique({ where: { slug: base } });
    const slug = taken ? `${base}-${randomId(6).toLowerCase()}` : base;
    const project = await this.prisma.project.create({ data: { id: newId.project(), name, slug } });
    const apiKey = await this.keys.create(project.id, 'default', ['project']);
    return { project, apiKey };
  }

  /** Every project, newest first (operators), with how many keys each has that still work. */
  async list(page: PageQuery) {
    let where = {};
    if (page.after) {
      const cursor = await this.prisma.project.findUnique({ where: { id: page.after }, select: { id: true, createdAt: true } });
      if (!cursor) throw notFound('project', page.after, 'after');
      where = afterRow(cursor);
    }
    return this.prisma.project.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.limit + 1,
      include: { _count: { select: { apiKeys: { where: { revokedAt: null } } } } },
    });
  }

  /**
   * A new key in any project, made by an operator: the way back in for a tenant whose every key was revoked (a
   * leaked key revoked with DELETE /v1/admin/api_keys, or the last one revoked by mistake).
   */
  async issueKey(projectId: string, name: string, scopes: ProjectKeyScope[] = ['project']): Promise<CreatedKey> {
    const project = await this.prisma.project.findUnique({ where: { id: projectId }, select: { id: true } });
    if (!project) throw notFound('project', projectId, 'project_id');
    return this.keys.create(project.id, name, scopes);
  }

  async get(projectId: string) {
    const project = await this.prisma.project.findUnique({ where: { id: projectId } });
    if (!project) throw new DomainError('not_found', `No such project: '${projectId}'`);
    return project;
  }

  /**
   * The default project and its bootstrap key. LORAPLANE_API_KEY is registered as given; in dev mode without it,
   * a fresh key is created and returned so the caller can print it (once: only its hash is stored).
   */
  async bootstrap(): Promise<{ projectId: string; createdKey?: string }> {
    const project = await this.prisma.project.upsert({
      where: { slug: DEFAULT_PROJECT_SLUG },
      update: {},
      create: { id: newId.project(), name: 'Default project', slug: DEFAULT_PROJECT_SLUG },
    });
    const fromEnv = this.config.env.LORAPLANE_API_KEY;
    if (fromEnv) {
      const { revokedBefore, rotatedOut } = await this.keys.ensureBootstrap(project.id, fromEnv);
      if (revokedBefore) this.logger.warn('LORAPLANE_API_KEY was revoked and stays revoked: set a new value to get an admin key.');
      if (rotatedOut > 0) this.logger.log(`LORAPLANE_API_KEY changed: ${rotatedOut} earlier bootstrap key(s) revoked.`);
      return { projectId: project.id };
    }
    if (this.config.isDev) {
      const created = await this.keys.create(project.id, `dev ${new Date().toISOString()}`, ['*']);
      return { projectId: project.id, createdKey: created.key };
    }
    this.logger.warn('LORAPLANE_API_KEY is not set: create keys through an existing admin key.');
    return { projectId: project.id };
  }
}
