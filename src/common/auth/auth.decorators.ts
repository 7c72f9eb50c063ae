import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';

export const PUBLIC_ROUTE = 'loraplane:public';
export const REQUIRED_SCOPE = 'loraplane:scope';
export const INFERENCE_ROUTE = 'loraplane:inference';

/** No API key needed (health, docs). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);
/** The key must carry this scope (keys with `*` carry all). */
export const RequireScope = (scope: 'admin') => SetMetadata(REQUIRED_SCOPE, scope);
/** A route an `inference` key may call besides the model calls themselves (listing models, its own project). */
export const ForInferenceKeys = () => SetMetadata(INFERENCE_ROUTE, true);

/**
 * The scopes a project's key may be created with: `project` (everything in its project: the default), and two
 * restricted ones for keys that live where a leak would cost less if they could do less: `inference` (call and list
 * models: an application's key) and `read` (every GET of its project: a monitor's or a dashboard's key).
 */
export const PROJECT_KEY_SCOPES = ['project', 'inference', 'read'] as const;
export type ProjectKeyScope = (typeof PROJECT_KEY_SCOPES)[number];

export interface Principal {
  projectId: string;
  keyId: string;
  scopes: string[];
  /** The gateway's limits of the key and of its project (requests/tokens per minute; null: none). */
  limits?: { key: { rpm: number | null; tpm: number | null }; project: { rpm: number | null; tpm: number | null } };
}

/**
 * How much a key may do: `*` everything, `admin` the operator's routes and its project's, `project` its project's,
 * anything less (`inference`, `read`) only what its scopes name.
 */
const reach = (scopes: string[]) => (scopes.includes('*') ? 3 : scopes.includes('admin') ? 2 : scopes.includes('project') ? 1 : 0);

/** Keys with `admin` or `*` act for the operator (create projects, revoke any key, the full priority range). */
export const isAdmin = (p: Principal) => reach(p.scopes) >= 2;

/** Whether a key may do everything in its project (not a restricted key). */
export const isUnrestricted = (scopes: string[]) => reach(scopes) >= 1;

/** Whether a key may call models (POST /v1/chat/completions, /v1/completions): any but a `read`-only key. */
export const mayCallModels = (p: Principal) => reach(p.scopes) >= 1 || p.scopes.includes('inference');

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
