import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { KeyCache } from '../../projects/key-cache';
import { DomainError } from '../domain-error';
import { requestContext } from '../request-context';
import { Principal, PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators';

/** `Authorization: Bearer <key>` on every route that is not @Public(). */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  /** Each handler's metadata, read once (decorators do not change at run time; reading them was per request). */
  private readonly routes = new WeakMap<object, Map<object, { isPublic: boolean; scope: string | undefined }>>();

  constructor(private readonly reflector: Reflector, private readonly keys: KeyCache) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const { isPublic, scope } = this.route(ctx);
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
    req.principal = principal;
    const store = requestContext.getStore();
    if (store) store.projectId = principal.projectId;
    return true;
  }

  private route(ctx: ExecutionContext): { isPublic: boolean; scope: string | undefined } {
    const [handler, controller] = [ctx.getHandler(), ctx.getClass()];
    let routes = this.routes.get(controller);
    if (!routes) this.routes.set(controller, (routes = new Map()));
    let route = routes.get(handler);
    if (!route) {
      const targets = [handler, controller];
      route = {
        isPublic: this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true,
        scope: this.reflector.getAllAndOverride<string>(REQUIRED_SCOPE, targets),
      };
      routes.set(handler, route);
    }
    return route;
  }
}
