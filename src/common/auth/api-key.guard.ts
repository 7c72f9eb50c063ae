import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { KeyCache } from '../../projects/key-cache';
import { DomainError } from '../domain-error';
import { requestContext } from '../request-context';
import { INFERENCE_ROUTE, isUnrestricted, Principal, PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators';

interface RouteAccess {
  isPublic: boolean;
  scope: string | undefined;
  /** An `inference` key may call it (ForInferenceKeys). */
  inference: boolean;
}

/**
 * Why a restricted key (`inference`, `read`) may not call this route, or null when it may. Default deny: a route is
 * open to an `inference` key only when marked, to a `read` key only when it is a GET.
 */
function restriction(p: Principal, route: RouteAccess, method: string): string | null {
  if (isUnrestricted(p.scopes)) return null;
  if (route.inference && p.scopes.includes('inference')) return null;
  if ((method === 'GET' || method === 'HEAD') && p.scopes.includes('read')) return null;
  const may = [p.scopes.includes('inference') ? 'call and list models' : null, p.scopes.includes('read') ? 'read (GET)' : null].filter(Boolean).join(' and ');
  return `This API key may only ${may || 'do nothing'} (scopes: ${p.scopes.join(', ')}); use a key with the 'project' scope.`;
}

/** `Authorization: Bearer <key>` on every route that is not @Public(). */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  /** Each handler's metadata, read once (decorators do not change at run time; reading them was per request). */
  private readonly routes = new WeakMap<object, Map<object, RouteAccess>>();

  constructor(private readonly reflector: Reflector, private readonly keys: KeyCache) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const route = this.route(ctx);
    const { isPublic, scope } = route;
    if (isPublic) return true;
    const req = ctx.switchToHttp().getRequest<Request & { principal?: Principal }>();
    const header = req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new DomainError(
        'unauthorized',
        "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer YOUR_KEY'.",
      );
    }
    const principal = await this.keys.authenticate(match[1]);
    if (!principal) throw new DomainError('unauthorized', 'Incorrect API key provided.');
    if (scope && !principal.scopes.includes(scope) && !principal.scopes.includes('*')) {
      throw new DomainError('forbidden', `This API key lacks the '${scope}' scope.`);
    }
    const refused = restriction(principal, route, req.method);
    if (refused) throw new DomainError('forbidden', refused);
    req.principal = principal;
    const store = requestContext.getStore();
    if (store) store.projectId = principal.projectId;
    return true;
  }

  private route(ctx: ExecutionContext): RouteAccess {
    const [handler, controller] = [ctx.getHandler(), ctx.getClass()];
    let routes = this.routes.get(controller);
    if (!routes) this.routes.set(controller, (routes = new Map()));
    let route = routes.get(handler);
    if (!route) {
      const targets = [handler, controller];
      route = {
        isPublic: this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true,
        scope: this.reflector.getAllAndOverride<string>(REQUIRED_SCOPE, targets),
        inference: this.reflector.getAllAndOverride<boolean>(INFERENCE_ROUTE, targets) === true,
      };
      routes.set(handler, route);
    }
    return route;
  }
}
