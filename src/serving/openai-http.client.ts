import { Global, Injectable, Module, OnModuleDestroy } from '@nestjs/common';
import { TargetGuard } from '../common/net/target-guard';
import { Config } from '../config/config';
import { OpenAIHttp } from './openai-http';
import { ReplicaRouter } from './replica-router';

/**
 * The process's one OpenAIHttp (one socket pool), configured from Config and closed with the app. Provided once,
 * globally: the agent and vLLM clients, eval targets, the gateway and the OpenAI migration's Files and Fine-tuning
 * reads all use it.
 */
@Injectable()
export class OpenAIHttpClient extends OpenAIHttp implements OnModuleDestroy {
  // Nearly every URL this transport calls was supplied by a tenant (replicas, provider models, eval targets, agents),
  // so every connection goes through the guard, the operator's OPENAI_BASE_URL included: a name resolving to a
  // refused address fails before a byte is sent.
  constructor(config: Config, guard: TargetGuard) {
    super({ maxResponseBytes: config.env.UPSTREAM_MAX_RESPONSE_BYTES, lookup: guard.lookup, refusal: (address) => guard.refusal(address) });
  }

  onModuleDestroy(): void {
    this.close();
  }
}

/** The transport and the replica router, once per process (the gateway and eval targets share in-flight counts). */
@Global()
@Module({ providers: [OpenAIHttpClient, ReplicaRouter], exports: [OpenAIHttpClient, ReplicaRouter] })
export class TransportModule {}
