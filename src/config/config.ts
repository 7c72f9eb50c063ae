import { Cidr, parseCidr } from '../common/net/address-ranges';
import { Env, parseEnv } from './config.schema';

/** The validated configuration, injected by class token. Construct with `Config.fromEnv(process.env)` at start. */
export class Config {
  private constructor(readonly env: Env) {}

  static fromEnv(env: Record<string, string | undefined>): Config {
    return new Config(parseEnv(env));
  }

  get isDev() { return this.env.LORAPLANE_MODE === 'dev'; }
  get runsApi() { return this.env.LORAPLANE_ROLE === 'all' || this.env.LORAPLANE_ROLE === 'api'; }
  get runsWorker() { return this.env.LORAPLANE_ROLE === 'all' || this.env.LORAPLANE_ROLE === 'worker'; }
  /** The inference routes: in `all` on the API's port; the `gateway` role serves them alone. */
  get runsGateway() { return this.env.LORAPLANE_ROLE === 'all' || this.env.LORAPLANE_ROLE === 'gateway'; }
  /** ALLOWED_PRIVATE_NETWORKS, or its default: loopback in dev mode, nothing in production. */
  get allowedPrivateNetworks(): Cidr[] {
    return this.env.ALLOWED_PRIVATE_NETWORKS ?? (this.isDev ? ['127.0.0.0/8', '::1/128'].map(parseCidr) : []);
  }
  get publicUrl() { return this.env.PUBLIC_URL ?? `http://localhost:${this.env.PORT}`; }
}
