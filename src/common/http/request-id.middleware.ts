import type { NextFunction, Request, Response } from 'express';
import { newId } from '../ids';
import { requestContext } from '../request-context';

const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's x-request-id (for tracing across services) or makes one; echoes it back. */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction) {
  const incoming = req.header('x-request-id');
  const requestId = incoming && VALID_ID.test(incoming) ? incoming : newId.request();
  res.setHeader('x-request-id', requestId);
  requestContext.run({ requestId }, next);
}
