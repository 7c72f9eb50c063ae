import type { NextFunction, Request, Response } from 'express';
import { newId } from '../ids';
import { requestContext } from '../request-context';

const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's x-request-id when it is a plain id (letters, digits, `._:-`, at most 128): else null, and one is made. */
export function acceptedRequestId(incoming: string | string[] | undefined): string | null {
  return typeof incoming === 'string' && VALID_ID.test(incoming) ? incoming : null;
}

/** Accepts a caller's x-request-id (for tracing across services) or makes one; echoes it back. */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction) {
  const requestId = acceptedRequestId(req.header('x-request-id')) ?? newId.request();
  res.setHeader('x-request-id', requestId);
  requestContext.run({ requestId }, next);
}
