import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  requestId: string;
  projectId?: string;
}

/** Carries the request id (and, once authenticated, the project) into every log line of a request. */
export const requestContext = new AsyncLocalStorage<RequestContext>();
