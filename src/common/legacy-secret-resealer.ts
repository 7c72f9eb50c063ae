import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { PrismaService } from '../db/prisma.service';
import { SecretBox, SecretPurpose } from './secret-box';

/**
 * Re-seals, once, the secrets stored before sealed values carried associated data (`v1.`), binding each to the row
 * it is in now. Runs at every start and finds nothing after the first; a compare-and-set on the old value lets
 * several processes start at once.
 */
@Injectable()
export class LegacySecretResealer implements OnApplicationBootstrap {
  private readonly logger = new Logger(LegacySecretResealer.name);

  constructor(private readonly prisma: PrismaService, private readonly box: SecretBox) {}

  async onApplicationBootstrap(): Promise<void> {
    const n = (await this.replicas()) + (await this.evalTargets()) + (await this.webhookEndpoints()) + (await this.providerModels());
    if (n > 0) this.logger.log(`re-sealed ${n} stored secret(s) with their row as associated data`);
  }

  private reseal(purpose: SecretPurpose, id: string, old: string): string {
    return this.box.seal(this.box.openLegacy(old), { purpose, id });
  }

  private async replicas(): Promise<number> {
    const rows = await this.prisma.replica.findMany({ where: { agentTokenSealed: { startsWith: 'v1.' } }, select: { id: true, agentTokenSealed: true } });
    let n = 0;
    for (const r of rows) {
      const sealed = this.reseal('replica.agent_token', r.id, r.agentTokenSealed);
      n += (await this.prisma.replica.updateMany({ where: { id: r.id, agentTokenSealed: r.agentTokenSealed }, data: { agentTokenSealed: sealed } })).count;
    }
    return n;
  }

  private async evalTargets(): Promise<number> {
    const rows = await this.prisma.evalTarget.findMany({ where: { apiKeySealed: { startsWith: 'v1.' } }, select: { id: true, apiKeySealed: true } });
    let n = 0;
    for (const r of rows) {
      const sealed = this.reseal('eval_target.api_key', r.id, r.apiKeySealed!);
      n += (await this.prisma.evalTarget.updateMany({ where: { id: r.id, apiKeySealed: r.apiKeySealed }, data: { apiKeySealed: sealed } })).count;
    }
    return n;
  }

  private async providerModels(): Promise<number> {
    const rows = await this.prisma.providerModel.findMany({ where: { apiKeySealed: { startsWith: 'v1.' } }, select: { id: true, apiKeySealed: true } });
    let n = 0;
    for (const r of rows) {
      const sealed = this.reseal('provider_model.api_key', r.id, r.apiKeySealed!);
      n += (await this.prisma.providerModel.updateMany({ where: { id: r.id, apiKeySealed: r.apiKeySealed }, data: { apiKeySealed: sealed } })).count;
    }
    return n;
  }

  private async webhookEndpoints(): Promise<number> {
    const rows = await this.prisma.webhookEndpoint.findMany({ where: { secretSealed: { startsWith: 'v1.' } }, select: { id: true, secretSealed: true } });
    let n = 0;
    for (const r of rows) {
      const sealed = this.reseal('webhook_endpoint.secret', r.id, r.secretSealed);
      n += (await this.prisma.webhookEndpoint.updateMany({ where: { id: r.id, secretSealed: r.secretSealed }, data: { secretSealed: sealed } })).count;
    }
    return n;
  }
}
