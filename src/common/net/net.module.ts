import { Global, Module } from '@nestjs/common';
import { TargetGuard } from './target-guard';

/** The outbound-URL guard, one instance (and one connection pool) for every feature that calls tenants' URLs. */
@Global()
@Module({ providers: [TargetGuard], exports: [TargetGuard] })
export class NetModule {}
