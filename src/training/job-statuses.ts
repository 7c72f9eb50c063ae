import type { JobStatus } from '../generated/prisma/client';

/**
 * The statuses a job never leaves, listed once: the state machine (job-state.ts), the API's waits and the CLI's
 * `jobs wait` read it from here. No runtime import, so the CLI can load it without Nest or Prisma.
 */
export const TERMINAL: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export const isTerminal = (status: string): boolean => (TERMINAL as readonly string[]).includes(status);
