import { DynamicModule, Global, Module } from '@nestjs/common';
import { Config } from './config';

@Global()
@Module({})
export class ConfigModule {
  static forConfig(config: Config): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: Config, useValue: config }], exports: [Config] };
  }
}
