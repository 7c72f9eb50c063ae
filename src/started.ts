import type { INestApplicationContext } from '@nestjs/common';

/** A started process (its roles), as start() returns it: to main(), and to the end-to-end tests. */
export interface Started {
  app: INestApplicationContext;
  url?: string;
  /** Only when a key was created at this start (dev mode without LORAPLANE_API_KEY). */
  createdApiKey?: string;
  close(): Promise<void>;
}
