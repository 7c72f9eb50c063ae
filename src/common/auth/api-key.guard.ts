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
  constructor(private readonly reflector: Reflector, private readonly keys: KeyCache) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
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
    const scope = this.reflector.getAllAndOverride<string>(REQUIRED_SCOPE, targets);
    if (scope && !principal.scopes.includes(scope) && !principal.scopes.includes('*')) {
      throw new DomainError('forbidden', `This API key lacks the '${scope}' scope.`);
    }
    req.principal = principal;
    const store = requestContext.getStore();
    if (store) store.projectId = principal.projectId;
    return true;
  }
}
