import { Global, Module } from '@nestjs/common';
import { ChangeFeed } from './change-feed';
import { PrismaService } from './prisma.service';

@Global()
@Module({ providers: [PrismaService, ChangeFeed], exports: [PrismaService, ChangeFeed] })
export class DbModule {}
