import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Client } from 'pg';
import { Config } from '../config/config';

export const CHANGES_CHANNEL = 'loraplane_changes';

type Listener = (table: string) => void;

/**
 * Postgres LISTEN on the change channel that triggers fill (see the gateway migration): each notification names the
 * table a committed statement changed. One dedicated connection per process; when it breaks it reconnects with
 * backoff and tells listeners `*` (changes may have been missed meanwhile, so everything must be reloaded).
 */
@Injectable()
export class ChangeFeed implements OnModuleDestroy {
  private readonly logger = new Logger(ChangeFeed.name);
  private readonly listeners = new Set<Listener>();
  private client: Client | null = null;
  private starting: Promise<void> | null = null;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;

  constructor(private readonly config: Config) {}

  /** Subscribes and makes sure the connection is up (the first subscriber waits for it). */
  async subscribe(listener: Listener): Promise<void> {
    this.listeners.add(listener);
    await (this.starting ??= this.connect());
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new Client({ connectionString: this.config.env.DATABASE_URL });
    client.on('notification', (msg) => this.emit(msg.payload ?? '*'));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      this.lost(client, err as Error);
      return;
    }
    if (this.closed) return void client.end().catch(() => undefined);
    this.client = client;
    if (this.failures > 0) this.logger.log('change feed reconnected');
    this.failures = 0;
    // Whatever changed while nobody listened is reloaded now.
    this.emit('*');
  }

  private lost(client: Client, err: Error): void {
    if (this.closed || (this.client !== null && this.client !== client) || this.retryTimer) return;
    this.client = null;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.failures++;
    if (this.failures === 1) this.logger.warn({ error: err.message }, 'change feed lost its connection; reconnecting (the periodic refresh covers meanwhile)');
    const delay = Math.min(100 * 2 ** this.failures, 5000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.starting = this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private emit(table: string): void {
    for (const l of this.listeners) l(table);
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
