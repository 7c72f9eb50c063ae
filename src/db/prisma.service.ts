import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Config } from '../config/config';
import { PrismaClient } from '../generated/prisma/client';

/** Prisma Client 7 over node-postgres: no engine binary at run time. */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(config: Config) {
    super({ adapter: new PrismaPg({ connectionString: config.env.DATABASE_URL, max: 10 }) });
  }

  async onModuleDestroy() {
    await this.$disconnect();
  }
}
