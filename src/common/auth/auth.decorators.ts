import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';

export const PUBLIC_ROUTE = 'loraplane:public';
export const REQUIRED_SCOPE = 'loraplane:scope';

/** No API key needed (health, docs). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);
/** The key must carry this scope (keys with `*` carry all). */
export const RequireScope = (scope: 'admin') => SetMetadata(REQUIRED_SCOPE, scope);

export interface Principal {
  projectId: string;
  keyId: string;
  scopes: string[];
  /** The gateway's limits of the key and of its project (requests/tokens per minute; null: none). */
  limits?: { key: { rpm: number | null; tpm: number | null }; project: { rpm: number | null; tpm: number | null } };
}

/** How much a key may do: `*` everything, `admin` the operator's routes, any other its own project's. */
const reach = (scopes: string[]) => (scopes.includes('*') ? 2 : scopes.includes('admin') ? 1 : 0);

/** Keys with `admin` or `*` act for the operator (create projects, revoke any key, the full priority range). */
export const isAdmin = (p: Principal) => reach(p.scopes) >= 1;

/**
 * Whether `who` may revoke or cap a key of its project that holds `scopes`: not a key that can do more than it can
 * (a project key revoking the operator's key would lock the operator out until a new LORAPLANE_API_KEY is set;
 * capping it at 1 request a minute, nearly as much).
 */
export const mayManageKey = (who: Principal, scopes: string[]) => reach(who.scopes) >= reach(scopes);

/** The authenticated caller's project: every tenant query filters by it. */
export const ProjectId = createParamDecorator((_: unknown, ctx: ExecutionContext): string => {
  return ctx.switchToHttp().getRequest<{ principal: Principal }>().principal.projectId;
});
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  return ctx.switchToHttp().getRequest<{ principal: Principal }>().principal;
});
