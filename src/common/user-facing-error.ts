import { Logger } from '@nestjs/common';
import { DomainError } from './domain-error';
import { newId } from './ids';

/**
 * The sentence a tenant may read about a failure that happened away from its request (a worker task, a sync).
 * Our own errors (DomainError, and errors wrapping one) say what happened in words meant for users; anything else
 * (a driver, ORM or library error: "Invalid `prisma.x()` invocation ... 57P03") is logged in full under a new error
 * id, and the user gets a readable sentence with that id, so an operator can find the detail and the tenant learns
 * nothing of the internals.
 */
export function userFacingMessage(err: unknown, logger: Logger, context: Record<string, unknown>, what = 'An internal error'): string {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof DomainError) return e.message;
  }
  const errorId = newId.error();
  logger.error({ err, errorId, ...context }, `${what}; shown to the user as error id ${errorId}`);
  return `${what} stopped this (error id ${errorId}); it is in the operator's log under that id.`;
}
